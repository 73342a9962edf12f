//! Tracked session state: the system variables, schema and multi-statement option a session
//! has set, as the backend reports them (session tracking, never SQL parsing), and the
//! statements that bring a backend connection from its state to a session's.
//!
//! A backend connection and a client session each carry a [`SessionState`]; a session may use
//! a connection once the connection's state equals the session's. Variables are compared by
//! their reported text, so a variable set back to its default still counts as set: replay
//! then sets it explicitly, which is harmless.

use std::collections::BTreeMap;

use mysql_common::collations::{Collation, CollationId};

use crate::relay::StateChanges;

/// The variables the pooler itself sets on backend connections; a session that changes them
/// cannot be followed (see [`SessionState::apply`]).
const OWN_PREFIX: &str = "session_track_";

/// The variables that decide how a statement's text is read when it is prepared.
const PARSE_VARS: [&str; 4] =
    ["sql_mode", "character_set_client", "character_set_connection", "collation_connection"];

/// What a server binds a prepared statement to when it prepares it: the current schema and
/// the variables that decide how its text is read. The statement keeps them (a server
/// re-preparing it uses them again) even after its session changes them, so a statement
/// prepared in one context must never serve a client that prepared the same text in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseContext {
    /// `None`: prepared with no schema, so the statement names no table without one.
    schema: Option<String>,
    vars: [Option<String>; PARSE_VARS.len()],
}

impl ParseContext {
    /// Whether a statement bound to this context serves a client that prepared its text in
    /// `wanted`. A context without a schema is served by any: its statement names no table
    /// that a schema would resolve.
    pub fn serves(&self, wanted: &ParseContext) -> bool {
        (wanted.schema.is_none() || wanted.schema == self.schema) && self.vars == wanted.vars
    }
}

/// One session's (or connection's) tracked state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    vars: BTreeMap<String, String>,
    schema: Option<String>,
    multi_statements: bool,
}

/// What [`SessionState::apply`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Something the state follows changed.
    pub tracked: bool,
    /// A variable the pooler owns changed: the connection can no longer be followed.
    pub untrackable: bool,
}

/// The steps that bring a connection's state to a session's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// `COM_INIT_DB` of this schema first.
    pub schema: Option<String>,
    /// Then this `SET SESSION ...` statement.
    pub set: Option<String>,
    /// Then `COM_SET_OPTION` to this multi-statement setting.
    pub multi_statements: Option<bool>,
}

impl Replay {
    /// Whether nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.schema.is_none() && self.set.is_none() && self.multi_statements.is_none()
    }
}

impl SessionState {
    /// The state a connection starts in after a handshake with `collation` and `schema`.
    pub fn initial(collation: u8, schema: Option<String>, multi_statements: bool) -> Self {
        let collation = Collation::from(CollationId::from(u16::from(collation)));
        let (charset, name) = match collation.charset() {
            "" => ("utf8mb4", "utf8mb4_general_ci"),
            charset => (charset, collation.collation()),
        };
        let mut vars = BTreeMap::new();
        for var in ["character_set_client", "character_set_connection", "character_set_results"] {
            vars.insert(var.to_owned(), charset.to_owned());
        }
        vars.insert("collation_connection".to_owned(), name.to_owned());
        SessionState { vars, schema, multi_statements }
    }

    /// The current schema.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The value of a tracked variable, if it was set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets the multi-statement option (`COM_SET_OPTION`).
    pub fn set_multi_statements(&mut self, on: bool) {
        self.multi_statements = on;
    }

    /// Sets the schema (`COM_INIT_DB` succeeded).
    pub fn set_schema(&mut self, schema: String) {
        self.schema = Some(schema);
    }

    /// Sets the schema, or none.
    pub fn set_schema_to(&mut self, schema: Option<String>) {
        self.schema = schema;
    }

    /// The context a statement prepared in this state is bound to.
    pub fn parse_context(&self) -> ParseContext {
        ParseContext {
            schema: self.schema.clone(),
            vars: PARSE_VARS.map(|name| self.vars.get(name).cloned()),
        }
    }

    /// This state with `context`'s schema and parse variables: where a connection goes to
    /// prepare a statement as its client once prepared it.
    pub fn with_parse_context(&self, context: &ParseContext) -> SessionState {
        let mut state = self.clone();
        if let Some(schema) = &context.schema {
            state.schema = Some(schema.clone());
        }
        for (name, value) in PARSE_VARS.iter().zip(&context.vars) {
            match value {
                Some(value) => state.vars.insert((*name).to_owned(), value.clone()),
                None => state.vars.remove(*name),
            };
        }
        state
    }

    /// Whether every variable `changes` reports is one a session's state can track (none of the
    /// pooler's own, none that is not a plain variable name): what [`SessionState::apply`] would
    /// find, without a state to apply it to.
    pub fn tracks(changes: &StateChanges) -> bool {
        changes.vars.iter().all(|(name, _)| is_trackable(name))
    }

    /// Takes in what a backend reported.
    pub fn apply(&mut self, changes: &StateChanges) -> Applied {
        let mut applied = Applied::default();
        for (name, value) in &changes.vars {
            if !is_trackable(name) {
                applied.untrackable = true;
                continue;
            }
            applied.tracked = true;
            self.vars.insert(name.clone(), value.clone());
        }
        if let Some(schema) = &changes.schema {
            applied.tracked = true;
            self.schema = Some(schema.clone()).filter(|s| !s.is_empty());
        }
        applied
    }

    /// What brings a connection in state `self` to state `to`.
    pub fn replay_to(&self, to: &SessionState) -> Replay {
        let mut assignments = Vec::new();
        for (name, value) in &to.vars {
            if self.vars.get(name) != Some(value) {
                assignments.push(format!("{name} = {}", sql_value(name, value)));
            }
        }
        for name in self.vars.keys() {
            if !to.vars.contains_key(name) {
                assignments.push(format!("{name} = DEFAULT"));
            }
        }
        Replay {
            schema: to.schema.clone().filter(|s| self.schema.as_ref() != Some(s)),
            set: (!assignments.is_empty()).then(|| format!("SET SESSION {}", assignments.join(", "))),
            multi_statements: (self.multi_statements != to.multi_statements).then_some(to.multi_statements),
        }
    }
}

/// Whether a reported variable can be tracked: not one of the pooler's own, a plain name.
fn is_trackable(name: &str) -> bool {
    !name.starts_with(OWN_PREFIX) && is_variable_name(name)
}

/// A reported value as SQL: numbers bare, everything else a quoted string.
fn sql_value(name: &str, value: &str) -> String {
    let numeric = !value.is_empty()
        && value.strip_prefix('-').unwrap_or(value).chars().all(|c| c.is_ascii_digit() || c == '.')
        && value.chars().filter(|c| *c == '.').count() <= 1
        && !value.ends_with('.');
    if numeric {
        return value.to_owned();
    }
    if value.is_empty() && name == "character_set_results" {
        return "NULL".to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Whether `name` is a system variable name as servers report them (replay builds SQL from it).
fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(vars: &[(&str, &str)]) -> StateChanges {
        StateChanges {
            vars: vars.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            ..StateChanges::default()
        }
    }

    #[test]
    fn replay_sets_what_differs_and_resets_what_the_target_never_set() {
        let base = SessionState::initial(45, Some("app".into()), true);
        assert_eq!(base.var("character_set_client"), Some("utf8mb4"));
        assert_eq!(base.var("collation_connection"), Some("utf8mb4_general_ci"));
        assert!(base.replay_to(&base).is_empty());

        let mut session = base.clone();
        session.apply(&changes(&[
            ("sql_mode", "ANSI_QUOTES"),
            ("time_zone", "+02:00"),
            ("wait_timeout", "60"),
        ]));
        let replay = base.replay_to(&session);
        assert_eq!(
            replay.set.as_deref(),
            Some("SET SESSION sql_mode = 'ANSI_QUOTES', time_zone = '+02:00', wait_timeout = 60")
        );
        assert_eq!(replay.schema, None);

        let back = session.replay_to(&base);
        assert_eq!(
            back.set.as_deref(),
            Some("SET SESSION sql_mode = DEFAULT, time_zone = DEFAULT, wait_timeout = DEFAULT")
        );
    }

    #[test]
    fn a_parse_context_is_the_schema_and_the_variables_that_read_the_text() {
        let base = SessionState::initial(45, Some("app".into()), true);
        let context = base.parse_context();
        let mut other = base.clone();
        other.apply(&changes(&[("time_zone", "+02:00")]));
        assert!(other.parse_context().serves(&context), "time_zone does not change how a statement reads");
        other.apply(&changes(&[("sql_mode", "ANSI_QUOTES")]));
        assert!(!other.parse_context().serves(&context));
        let back = other.with_parse_context(&context);
        assert!(back.parse_context().serves(&context));
        assert_eq!(back.var("time_zone"), Some("+02:00"), "only the parse variables move");
        assert_eq!(other.replay_to(&back).set.as_deref(), Some("SET SESSION sql_mode = DEFAULT"));

        let mut elsewhere = base.clone();
        elsewhere.set_schema("other".into());
        assert!(!elsewhere.parse_context().serves(&context));
        assert_eq!(elsewhere.with_parse_context(&context).schema(), Some("app"));
        let schemaless = SessionState::initial(45, None, true).parse_context();
        assert!(elsewhere.parse_context().serves(&schemaless), "no schema fits any");
        assert_eq!(elsewhere.with_parse_context(&schemaless).schema(), Some("other"));
    }

    #[test]
    fn own_variables_make_a_connection_untrackable() {
        let mut state = SessionState::initial(45, None, true);
        let applied = state.apply(&changes(&[("session_track_system_variables", "")]));
        assert!(applied.untrackable);
        assert!(!applied.tracked);
    }

    #[test]
    fn values_are_quoted_unless_numeric() {
        assert_eq!(sql_value("x", "It's"), "'It''s'");
        assert_eq!(sql_value("x", "a\\b"), "'a\\\\b'");
        assert_eq!(sql_value("x", "-12.5"), "-12.5");
        assert_eq!(sql_value("x", "1.2.3"), "'1.2.3'");
        assert_eq!(sql_value("x", ""), "''");
        assert_eq!(sql_value("character_set_results", ""), "NULL");
    }
}
