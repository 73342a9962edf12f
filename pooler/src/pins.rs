//! Why a session must keep its backend connection between statements, found by a light scan
//! of the SQL text (words outside strings and comments, read as the session's `sql_mode`
//! reads quotes; the bodies of executable comments count, the server runs them).
//!
//! Multiplexing is an allowance: session tracking tells the pooler about variables and schema,
//! and a statement is let go of its connection only if the scan can name everything else it
//! may leave behind and none of that is session state. Anything the pooler cannot replay —
//! temporary tables, table locks, named locks, user variables, text-protocol `PREPARE`,
//! `SQL_CALC_FOUND_ROWS`, `HANDLER`, `XA`, sequences' session values, SQL the scan cannot see
//! (`CALL`, `EXECUTE IMMEDIATE`, executable comments) and every statement not on the list of
//! known kinds — pins the session to its connection until it resets or ends (`UNLOCK TABLES`
//! ends a table-lock pin); the connection is reset before anyone else gets it.

mod words;

use std::fmt;

pub use words::Dialect;
use words::{Word, Words};

/// A reason to pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinReason {
    /// `CREATE TEMPORARY TABLE`.
    TemporaryTable,
    /// `LOCK TABLES`.
    LockTables,
    /// `GET_LOCK()`.
    GetLock,
    /// A user variable (`@name`).
    UserVariable,
    /// Text-protocol `PREPARE`.
    Prepare,
    /// `SQL_CALC_FOUND_ROWS` (the next `FOUND_ROWS()` needs the same connection).
    FoundRows,
    /// A `SET` whose effect session tracking did not report, or that changes tracking itself.
    UntrackedSet,
    /// The server reported a session state change the pooler cannot name.
    UntrackedState,
    /// `CALL`, `EXECUTE [IMMEDIATE]`: SQL the scan cannot see runs.
    Routine,
    /// An executable comment (`/*! */`, `/*M! */`): what runs depends on the server's version.
    ExecutableComment,
    /// `HANDLER` (an open handler is the session's).
    Handler,
    /// `XA` (a distributed transaction the status flags do not show).
    XaTransaction,
    /// A sequence function (`NEXTVAL`, `LASTVAL`, `SETVAL`, `NEXT`/`PREVIOUS VALUE FOR`): the
    /// last value taken is the session's.
    Sequence,
    /// A statement of a kind the pooler does not know to be free of session state.
    UnknownStatement,
}

impl PinReason {
    /// Every reason, in a fixed order (for stats).
    pub const ALL: [PinReason; 14] = [
        PinReason::TemporaryTable,
        PinReason::LockTables,
        PinReason::GetLock,
        PinReason::UserVariable,
        PinReason::Prepare,
        PinReason::FoundRows,
        PinReason::UntrackedSet,
        PinReason::UntrackedState,
        PinReason::Routine,
        PinReason::ExecutableComment,
        PinReason::Handler,
        PinReason::XaTransaction,
        PinReason::Sequence,
        PinReason::UnknownStatement,
    ];

    /// A short name for stats and logs.
    pub fn name(self) -> &'static str {
        match self {
            PinReason::TemporaryTable => "temporary_table",
            PinReason::LockTables => "lock_tables",
            PinReason::GetLock => "get_lock",
            PinReason::UserVariable => "user_variable",
            PinReason::Prepare => "prepare",
            PinReason::FoundRows => "sql_calc_found_rows",
            PinReason::UntrackedSet => "untracked_set",
            PinReason::UntrackedState => "untracked_state",
            PinReason::Routine => "routine",
            PinReason::ExecutableComment => "executable_comment",
            PinReason::Handler => "handler",
            PinReason::XaTransaction => "xa",
            PinReason::Sequence => "sequence",
            PinReason::UnknownStatement => "unknown_statement",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of pin reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins(u16);

impl Pins {
    /// Whether no reason holds.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `reason` holds.
    pub fn contains(self, reason: PinReason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// Adds `reason`.
    pub fn insert(&mut self, reason: PinReason) {
        self.0 |= reason.bit();
    }

    /// Removes `reason`.
    pub fn remove(&mut self, reason: PinReason) {
        self.0 &= !reason.bit();
    }

    /// Adds every reason of `other`; the ones that were new.
    pub fn union(&mut self, other: Pins) -> Pins {
        let new = Pins(other.0 & !self.0);
        self.0 |= other.0;
        new
    }

    /// The reasons, in [`PinReason::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = PinReason> {
        PinReason::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

/// The statements known to leave no session state beyond what session tracking reports (and
/// the pins the scan finds in them). A statement that starts with any other word pins.
const KNOWN_STATEMENTS: [&[u8]; 38] = [
    b"SELECT",
    b"INSERT",
    b"UPDATE",
    b"DELETE",
    b"REPLACE",
    b"WITH",
    b"VALUES",
    b"TABLE",
    b"BEGIN",
    b"START",
    b"COMMIT",
    b"ROLLBACK",
    b"SAVEPOINT",
    b"RELEASE",
    b"SET",
    b"USE",
    b"SHOW",
    b"DESCRIBE",
    b"DESC",
    b"EXPLAIN",
    b"ANALYZE",
    b"CREATE",
    b"ALTER",
    b"DROP",
    b"RENAME",
    b"TRUNCATE",
    b"GRANT",
    b"REVOKE",
    b"DO",
    b"LOCK",
    b"UNLOCK",
    b"PREPARE",
    b"DEALLOCATE",
    b"OPTIMIZE",
    b"CHECK",
    b"CHECKSUM",
    b"REPAIR",
    b"GET",
];

/// Statements that name a table by their kind.
const TABLE_STATEMENTS: [&[u8]; 10] = [
    b"INSERT",
    b"UPDATE",
    b"DELETE",
    b"REPLACE",
    b"TRUNCATE",
    b"ALTER",
    b"CREATE",
    b"DROP",
    b"RENAME",
    b"LOCK",
];

/// What a statement's text says about pinning, and what it needs of its connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Reasons the statement pins for.
    pub pins: Pins,
    /// The statement releases table locks (`UNLOCK TABLES`).
    pub unlocks_tables: bool,
    /// A statement starts with `SET` (a session change tracking should report).
    pub is_set: bool,
    /// One statement, a `SET` that is not `SET STATEMENT ... FOR`, or `USE`: any session state
    /// change the server reports for it is a variable or the schema, which tracking names.
    /// For any other text a reported change tracking does not name pins.
    pub changes_only_tracked_state: bool,
    /// `SET STATEMENT ... FOR`: the variables the server reports set hold for this statement
    /// only, and must not be taken into the session's state.
    pub statement_scoped_set: bool,
    /// Statements in the text (ignoring empty ones).
    pub statements: u32,
    /// The statement reads or sets `LAST_INSERT_ID()` (also as `@@identity` or
    /// `@@last_insert_id`), calls a procedure (which may), or is more than one statement: it
    /// needs the session's own value on its connection, and may leave a new one there.
    pub insert_id: bool,
    /// The statement reads what the statement before it left on the connection (`SHOW
    /// WARNINGS`, `SHOW ERRORS`, `SHOW COUNT(*) WARNINGS`, `GET DIAGNOSTICS`,
    /// `@@warning_count`, `@@error_count`, `FOUND_ROWS()`, `ROW_COUNT()`): on a connection
    /// another session used last, that would be the other session's.
    pub reads_previous: bool,
    /// The statement names a table (`FROM` or `JOIN` something other than `DUAL`, or a data
    /// or table statement): a server empties the diagnostics area before such a statement, and
    /// keeps it across statements that name none (`SET`, `SELECT 1`, `DO`).
    pub uses_table: bool,
    /// A statement is `KILL`: the connection ids a client can learn are the backend
    /// connections', which other clients' statements run on.
    pub kills: bool,
    /// A statement is an `INSERT`, `REPLACE` or `LOAD`: its OK may report an insert id, and
    /// `LAST_INSERT_ID()` may change on its connection.
    pub may_insert: bool,
    /// A statement is a `COMMIT` or `ROLLBACK`: a session in transaction mode may let its
    /// connection go after it.
    pub ends_transaction: bool,
}

impl Scan {
    /// What either of two readings of one text found (only what both agree on for
    /// [`Scan::changes_only_tracked_state`]).
    fn union(self, other: Scan) -> Scan {
        let mut pins = self.pins;
        pins.union(other.pins);
        Scan {
            pins,
            unlocks_tables: self.unlocks_tables && other.unlocks_tables,
            is_set: self.is_set || other.is_set,
            changes_only_tracked_state: self.changes_only_tracked_state && other.changes_only_tracked_state,
            statement_scoped_set: self.statement_scoped_set || other.statement_scoped_set,
            statements: self.statements.max(other.statements),
            insert_id: self.insert_id || other.insert_id,
            reads_previous: self.reads_previous || other.reads_previous,
            uses_table: self.uses_table && other.uses_table,
            kills: self.kills || other.kills,
            may_insert: self.may_insert || other.may_insert,
            ends_transaction: self.ends_transaction || other.ends_transaction,
        }
    }
}

/// Scans `sql` (one or more statements) as a server reads it for a session whose `sql_mode`
/// is `sql_mode` (`None`: not known, so every reading counts). Several statements are read
/// every way too, since one of them may change `sql_mode` for the next.
pub fn scan(sql: &[u8], sql_mode: Option<&str>) -> Scan {
    let known = sql_mode.map(Dialect::of_sql_mode);
    if !sql.contains(&b'\\') {
        // Without a backslash the dialects read every quote alike.
        return scan_as(sql, known.unwrap_or(Dialect::ALL[0]));
    }
    if let Some(dialect) = known {
        let scan = scan_as(sql, dialect);
        if scan.statements <= 1 {
            return scan;
        }
    }
    // Unknown mode, or several statements: what any reading finds.
    let mut readings = Dialect::ALL.into_iter().map(|dialect| scan_as(sql, dialect));
    let first = readings.next().unwrap_or_default();
    readings.fold(first, Scan::union)
}

/// The statement being read: its leading word and the word before the current one.
#[derive(Default)]
struct Statement<'a> {
    leading: Option<&'a [u8]>,
    words: usize,
    previous: Option<&'a [u8]>,
}

fn scan_as(sql: &[u8], dialect: Dialect) -> Scan {
    let mut scan = Scan::default();
    let mut words = Words::new(sql, dialect);
    let mut statement = Statement::default();
    let mut only_tracked = true;
    while let Some(word) = words.next_word() {
        if word == Word::Semicolon {
            statement = Statement::default();
            continue;
        }
        if word == Word::ExecutableComment {
            scan.pins.insert(PinReason::ExecutableComment);
            continue;
        }
        if statement.words == 0 {
            scan.statements += 1;
            scan.insert_id |= scan.statements > 1;
            let leading = match word {
                Word::Ident(ident) => Some(ident),
                _ => None,
            };
            statement.leading = leading;
            only_tracked &= leading.is_some_and(|w| is(w, b"SET") || is(w, b"USE"));
            if let Some(reason) = leading.and_then(leading_pin) {
                scan.pins.insert(reason);
            }
            scan.is_set |= leading.is_some_and(|w| is(w, b"SET"));
            scan.uses_table |= leading.is_some_and(|w| TABLE_STATEMENTS.iter().any(|t| is(w, t)));
            scan.insert_id |= leading.is_some_and(|w| is(w, b"CALL"));
            scan.kills |= leading.is_some_and(|w| is(w, b"KILL"));
            scan.may_insert |=
                leading.is_some_and(|w| is(w, b"INSERT") || is(w, b"REPLACE") || is(w, b"LOAD"));
            scan.ends_transaction |= leading.is_some_and(|w| is(w, b"COMMIT") || is(w, b"ROLLBACK"));
        }
        statement.words += 1;
        let leading = statement.leading.unwrap_or_default();
        match word {
            Word::UserVariable => scan.pins.insert(PinReason::UserVariable),
            Word::SystemVariable(name) => {
                scan.reads_previous |= is(name, b"warning_count") || is(name, b"error_count");
                scan.insert_id |= is(name, b"identity") || is(name, b"last_insert_id");
            }
            Word::Ident(ident) => {
                let prev = statement.previous.unwrap_or_default();
                if statement.words == 2 && is(leading, b"SET") && is(ident, b"STATEMENT") {
                    scan.statement_scoped_set = true;
                }
                if is(ident, b"TEMPORARY") && is(leading, b"CREATE") {
                    scan.pins.insert(PinReason::TemporaryTable);
                }
                if is(ident, b"TABLES") || is(ident, b"TABLE") {
                    if is(prev, b"LOCK") {
                        scan.pins.insert(PinReason::LockTables);
                    } else if is(prev, b"UNLOCK") {
                        scan.unlocks_tables = true;
                    }
                }
                let show = statement.words == 2 && is(leading, b"SHOW");
                scan.reads_previous |= (show
                    && (is(ident, b"WARNINGS") || is(ident, b"ERRORS") || is(ident, b"COUNT")))
                    || (is(ident, b"DIAGNOSTICS") && is(prev, b"GET"))
                    || is(ident, b"warning_count")
                    || is(ident, b"error_count")
                    || is(ident, b"FOUND_ROWS")
                    || is(ident, b"ROW_COUNT");
                scan.insert_id |= is(ident, b"LAST_INSERT_ID");
                if (is(prev, b"FROM") || is(prev, b"JOIN")) && !is(ident, b"DUAL") {
                    scan.uses_table = true;
                }
                if is(ident, b"GET_LOCK") {
                    scan.pins.insert(PinReason::GetLock);
                }
                if is(ident, b"SQL_CALC_FOUND_ROWS") {
                    scan.pins.insert(PinReason::FoundRows);
                }
                if ["NEXTVAL", "LASTVAL", "SETVAL"].iter().any(|f| is(ident, f.as_bytes()))
                    || (is(ident, b"VALUE") && (is(prev, b"NEXT") || is(prev, b"PREVIOUS")))
                {
                    scan.pins.insert(PinReason::Sequence);
                }
                statement.previous = Some(ident);
                continue;
            }
            _ => {}
        }
        statement.previous = None;
    }
    scan.changes_only_tracked_state = only_tracked && scan.statements == 1 && !scan.statement_scoped_set;
    if scan.statements > 1 {
        scan.unlocks_tables = false; // a later statement may lock again
    }
    scan
}

/// The pin a statement's leading word stands for, if it is not a known kind.
fn leading_pin(leading: &[u8]) -> Option<PinReason> {
    if is(leading, b"CALL") || is(leading, b"EXECUTE") {
        Some(PinReason::Routine)
    } else if is(leading, b"HANDLER") {
        Some(PinReason::Handler)
    } else if is(leading, b"XA") {
        Some(PinReason::XaTransaction)
    } else if is(leading, b"PREPARE") {
        Some(PinReason::Prepare)
    } else if KNOWN_STATEMENTS.iter().any(|known| is(leading, known)) {
        None
    } else {
        Some(PinReason::UnknownStatement)
    }
}

fn is(word: &[u8], name: &[u8]) -> bool {
    word.eq_ignore_ascii_case(name)
}

#[cfg(test)]
mod tests;
