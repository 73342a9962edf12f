//! What drivers send right after they connect that changes only tracked session state —
//! PyMySQL's `SET AUTOCOMMIT = 0`, mysql-connector-python's `SET NAMES 'utf8mb4' COLLATE ...`
//! and `SET @@session.autocommit = OFF`, Connector/J's `SET character_set_results = NULL` — and
//! a bare `COMMIT` or `ROLLBACK` with no transaction to end: answered by the pooler, without a
//! checkout, when it already knows the answer.
//!
//! A pool learns the answer to such a `SET` the first time a session runs its exact text on a
//! backend: an OK without warnings that changed only variables tracking reports is remembered
//! (text → changes, at most [`MAX_KNOWN`] texts per pool, the first ones seen). A later session
//! that holds no connection has the same changes applied to its state — its next checkout
//! replays them onto the connection, as after any `SET` — and gets an OK. Only a fixed form
//! qualifies: one assignment of a constant (a word, a number or a plain quoted string) to one of
//! [`VARIABLES`], or `SET NAMES` with an optional `COLLATE`; its effect then depends on nothing
//! but the server, so the first answer holds for every session. A text the server refused is
//! never remembered: every session that sends it gets the server's own error.
//!
//! A session holding no connection is in no transaction (a transaction holds its connection),
//! so a `COMMIT` or `ROLLBACK` there ends nothing and gets an OK. Clients that asked for
//! session-state tracking (`CLIENT_SESSION_TRACK`) are always answered by the server, whose OK
//! says what changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mysql_common::constants::CapabilityFlags;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::protocol::framing::Sequence;
use crate::relay::{Outcome, StateChanges};
use crate::state::SessionState;

/// Texts a pool remembers answers to; later ones go to the backend each time.
pub const MAX_KNOWN: usize = 64;

/// The longest text that qualifies.
const MAX_TEXT: usize = 200;

/// The session variables a set-up `SET` may assign (besides `SET NAMES`).
pub const VARIABLES: [&str; 10] = [
    "autocommit",
    "sql_mode",
    "time_zone",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    "transaction_isolation",
    "tx_isolation",
    "wait_timeout",
];

/// What a statement's text is, for this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStatement {
    /// A `SET` of a constant to a listed variable, or `SET NAMES`.
    Set,
    /// `COMMIT` or `ROLLBACK` (optionally `WORK`), nothing more.
    EndTransaction,
}

/// What `sql` is, if it is one of the statements this file answers.
pub fn classify(sql: &[u8]) -> Option<SetupStatement> {
    // Most statements are none of these: a look at the first letter turns them away.
    let first = sql.iter().find(|b| !b.is_ascii_whitespace())?.to_ascii_uppercase();
    if sql.len() > MAX_TEXT || !matches!(first, b'S' | b'C' | b'R') {
        return None;
    }
    let text = std::str::from_utf8(sql).ok()?.trim();
    let text = text.strip_suffix(';').unwrap_or(text);
    let tokens = tokens(text)?;
    let word = |i: usize, w: &str| matches!(tokens.get(i), Some(Token::Word(t)) if t.eq_ignore_ascii_case(w));
    match tokens.len() {
        1 | 2 if (word(0, "COMMIT") || word(0, "ROLLBACK")) && (tokens.len() == 1 || word(1, "WORK")) => {
            return Some(SetupStatement::EndTransaction);
        }
        _ => {}
    }
    if !word(0, "SET") {
        return None;
    }
    let rest = &tokens[1..];
    if word(1, "NAMES") {
        let constant = |i: usize| matches!(rest.get(i), Some(Token::Word(_) | Token::Quoted(_)));
        let valid = match rest.len() {
            2 => constant(1),
            4 => constant(1) && word(3, "COLLATE") && constant(3),
            _ => false,
        };
        return valid.then_some(SetupStatement::Set);
    }
    // `[SESSION | LOCAL] name = value`, `@@[session. | local.]name = value`.
    let rest = match rest {
        [Token::Word(scope), rest @ ..]
            if scope.eq_ignore_ascii_case("SESSION") || scope.eq_ignore_ascii_case("LOCAL") =>
        {
            rest
        }
        _ => rest,
    };
    match rest {
        [Token::Variable(name) | Token::Word(name), Token::Equals, Token::Word(_) | Token::Quoted(_)]
            if VARIABLES.iter().any(|v| v.eq_ignore_ascii_case(name)) =>
        {
            Some(SetupStatement::Set)
        }
        _ => None,
    }
}

/// A piece of a set-up statement's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// Letters, digits, `_`, `-`, `+`, `.` (a keyword, a name or a number).
    Word(&'a str),
    /// `'...'` holding no quote or backslash.
    Quoted(&'a str),
    /// `@@name`, `@@session.name` or `@@local.name` (the name).
    Variable(&'a str),
    /// `=`.
    Equals,
}

/// The tokens of `text`, or `None` if anything else is in it (a comment, a function call, a
/// user variable, a double-quoted string, an escape): such a text is not a set-up statement.
fn tokens(text: &str) -> Option<Vec<Token<'_>>> {
    let word_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.');
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else { return Some(tokens) };
        let (token, len) = match first {
            '=' => (Token::Equals, 1),
            '\'' => {
                let end = rest[1..].find('\'')? + 1;
                let inner = &rest[1..end];
                if inner.contains('\\') || rest[end + 1..].starts_with('\'') {
                    return None;
                }
                (Token::Quoted(inner), end + 1)
            }
            '@' => {
                let name = rest.strip_prefix("@@")?;
                let len = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
                let full = &name[..len.unwrap_or(name.len())];
                let name = match full.split_once('.') {
                    Some((scope, name))
                        if scope.eq_ignore_ascii_case("session") || scope.eq_ignore_ascii_case("local") =>
                    {
                        name
                    }
                    Some(_) => return None,
                    None => full,
                };
                (Token::Variable(name), 2 + full.len())
            }
            c if word_char(c) => {
                let len = rest.find(|c: char| !word_char(c)).unwrap_or(rest.len());
                // `--` starts a comment.
                if rest[..len].contains("--") {
                    return None;
                }
                (Token::Word(&rest[..len]), len)
            }
            _ => return None,
        };
        if token == Token::Variable("") {
            return None;
        }
        tokens.push(token);
        rest = &rest[len..];
    }
}

/// The answers a pool learnt to set-up `SET`s: text → the changes its backend reported.
#[derive(Debug, Default)]
pub struct KnownSets {
    known: Mutex<HashMap<Box<[u8]>, Arc<StateChanges>>>,
}

impl KnownSets {
    /// The changes `sql` makes, if learnt.
    fn get(&self, sql: &[u8]) -> Option<Arc<StateChanges>> {
        self.known.lock().ok()?.get(sql).cloned()
    }

    /// Remembers what `sql` changed, unless [`MAX_KNOWN`] texts are known.
    fn learn(&self, sql: &[u8], changes: &StateChanges) {
        if let Ok(mut known) = self.known.lock()
            && known.len() < MAX_KNOWN
        {
            known.entry(sql.into()).or_insert_with(|| Arc::new(changes.clone()));
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Answers `sql` here if it is a set-up `SET` the pool knows the answer to, or a `COMMIT`
    /// or `ROLLBACK` with no transaction, and the session holds no connection; whether it did.
    pub(super) async fn answer_setup_statement(&mut self, sql: &[u8], seq: &mut Sequence) -> bool {
        if self.held.is_some()
            || self.caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK)
            || self.ctx.pool.backend_problem().is_some()
        {
            return false;
        }
        match classify(sql) {
            Some(SetupStatement::EndTransaction) => {}
            Some(SetupStatement::Set) => {
                let Some(changes) = self.ctx.known_sets.get(sql) else {
                    return false;
                };
                self.state.apply(&changes);
            }
            None => return false,
        }
        self.reply_ok(seq).await;
        true
    }

    /// After `sql` ran on a backend with `outcome`: if it is a set-up `SET` that changed only
    /// tracked variables, without an error or a warning, the pool remembers its answer. Never
    /// from a pinned session: a session that changed what its connection reports
    /// (`session_track_*`) is pinned, and its answer may leave changes out.
    pub(super) fn learn_setup_statement(&self, sql: &[u8], outcome: &Outcome) {
        let changes = &outcome.changes;
        let only_variables = !changes.vars.is_empty() && changes.schema.is_none();
        if outcome.error.is_some() || outcome.warnings > 0 || !only_variables || !self.pins.is_empty() {
            return;
        }
        if classify(sql) != Some(SetupStatement::Set) || !SessionState::tracks(changes) {
            return;
        }
        self.ctx.known_sets.learn(sql, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_drivers_send_is_recognised_and_nothing_else() {
        for set in [
            "SET AUTOCOMMIT = 0",
            "SET NAMES utf8mb4",
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'",
            "SET @@session.autocommit = OFF",
            "set character_set_results = NULL;",
            "SET SESSION sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE'",
            "SET time_zone = '+00:00'",
            "SET @@wait_timeout=28800",
        ] {
            assert_eq!(classify(set.as_bytes()), Some(SetupStatement::Set), "{set}");
        }
        for end in ["COMMIT", "rollback", " ROLLBACK WORK; "] {
            assert_eq!(classify(end.as_bytes()), Some(SetupStatement::EndTransaction), "{end}");
        }
        for other in [
            "SET @a = 1",
            "SET autocommit = @@global.autocommit",
            "SET sql_mode = CONCAT(@@sql_mode, ',ANSI')",
            "SET @@global.autocommit = 0",
            "SET foreign_key_checks = 0",
            "SET autocommit = 0, sql_mode = ''",
            "SET autocommit = 0; DROP TABLE t",
            "SET NAMES utf8mb4 -- x",
            "SET NAMES /* x */ utf8mb4",
            "SET time_zone = 'a\\'b'",
            "SET time_zone = 'it''s'",
            "SET sql_mode = \"ANSI\"",
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "COMMIT AND CHAIN",
            "ROLLBACK TO SAVEPOINT s",
            "SET",
            "SET @@ = 1",
        ] {
            assert_eq!(classify(other.as_bytes()), None, "{other}");
        }
        let long = format!("SET time_zone = '{}'", "x".repeat(MAX_TEXT));
        assert_eq!(classify(long.as_bytes()), None);
    }

    #[test]
    fn a_pool_remembers_a_bounded_number_of_answers() {
        let known = KnownSets::default();
        let changes = StateChanges { vars: vec![("autocommit".into(), "OFF".into())], ..Default::default() };
        for n in 0..=MAX_KNOWN {
            known.learn(format!("SET wait_timeout = {n}").as_bytes(), &changes);
        }
        assert!(known.get(b"SET wait_timeout = 0").is_some());
        assert!(known.get(format!("SET wait_timeout = {MAX_KNOWN}").as_bytes()).is_none());
    }
}
