//! Why a session must keep its backend connection between statements, found by a light scan
//! of the SQL text (words outside strings and comments; `/*! ... */` counts, the server runs
//! it). Session tracking tells the pooler about variables and schema; what it cannot replay —
//! temporary tables, table locks, named locks, user variables, text-protocol `PREPARE`,
//! `SQL_CALC_FOUND_ROWS` — pins the session to its connection until it resets or ends
//! (`UNLOCK TABLES` ends a table-lock pin).

use std::fmt;

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
}

impl PinReason {
    /// Every reason, in a fixed order (for stats).
    pub const ALL: [PinReason; 8] = [
        PinReason::TemporaryTable,
        PinReason::LockTables,
        PinReason::GetLock,
        PinReason::UserVariable,
        PinReason::Prepare,
        PinReason::FoundRows,
        PinReason::UntrackedSet,
        PinReason::UntrackedState,
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

/// What a statement's text says about pinning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Reasons the statement pins for.
    pub pins: Pins,
    /// The statement releases table locks (`UNLOCK TABLES`).
    pub unlocks_tables: bool,
    /// The statement starts with `SET` (a session change tracking should report).
    pub is_set: bool,
    /// The statement reads or sets `LAST_INSERT_ID()`, calls a procedure (which may), or is
    /// more than one statement: it needs the session's own value on its connection, and may
    /// leave a new one there.
    pub insert_id: bool,
    /// The statement reads the diagnostics the statement before it left (`SHOW WARNINGS`,
    /// `SHOW ERRORS`, `SHOW COUNT(*) WARNINGS`, `GET DIAGNOSTICS`, `@@warning_count`,
    /// `@@error_count`): on a connection another session used last, they would be that
    /// session's.
    pub diagnostics: bool,
}

/// Scans `sql` (one or more statements).
pub fn scan(sql: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut words = Words { sql, at: 0 };
    let mut previous: Option<Word<'_>> = None;
    let mut statement_start = true;
    let mut after_semicolon = false;
    let mut previous_at_start = false;
    while let Some(word) = words.next() {
        match word {
            Word::Semicolon => {
                statement_start = true;
                previous = None;
                after_semicolon = true;
                continue;
            }
            Word::UserVariable => scan.pins.insert(PinReason::UserVariable),
            Word::SystemVariable(name) => scan.diagnostics |= is_diagnostics_count(name),
            Word::Ident(ident) => {
                scan.insert_id |= after_semicolon;
                let prev = match previous {
                    Some(Word::Ident(p)) => Some(p),
                    _ => None,
                };
                if statement_start && ident.eq_ignore_ascii_case(b"SET") {
                    scan.is_set = true;
                }
                if statement_start && ident.eq_ignore_ascii_case(b"PREPARE") {
                    scan.pins.insert(PinReason::Prepare);
                }
                if ident.eq_ignore_ascii_case(b"TEMPORARY")
                    && prev.is_some_and(|p| p.eq_ignore_ascii_case(b"CREATE"))
                {
                    scan.pins.insert(PinReason::TemporaryTable);
                }
                if ident.eq_ignore_ascii_case(b"TABLES") || ident.eq_ignore_ascii_case(b"TABLE") {
                    match prev {
                        Some(p) if p.eq_ignore_ascii_case(b"LOCK") => scan.pins.insert(PinReason::LockTables),
                        Some(p) if p.eq_ignore_ascii_case(b"UNLOCK") => scan.unlocks_tables = true,
                        _ => {}
                    }
                }
                if ident.eq_ignore_ascii_case(b"LAST_INSERT_ID")
                    || (statement_start && ident.eq_ignore_ascii_case(b"CALL"))
                {
                    scan.insert_id = true;
                }
                let show = prev.is_some_and(|p| p.eq_ignore_ascii_case(b"SHOW")) && previous_at_start;
                if (show
                    && (ident.eq_ignore_ascii_case(b"WARNINGS")
                        || ident.eq_ignore_ascii_case(b"ERRORS")
                        || ident.eq_ignore_ascii_case(b"COUNT")))
                    || (ident.eq_ignore_ascii_case(b"DIAGNOSTICS")
                        && prev.is_some_and(|p| p.eq_ignore_ascii_case(b"GET")))
                    || is_diagnostics_count(ident)
                {
                    scan.diagnostics = true;
                }
                if ident.eq_ignore_ascii_case(b"GET_LOCK") {
                    scan.pins.insert(PinReason::GetLock);
                }
                if ident.eq_ignore_ascii_case(b"SQL_CALC_FOUND_ROWS") {
                    scan.pins.insert(PinReason::FoundRows);
                }
            }
            Word::Other => {}
        }
        previous_at_start = statement_start;
        statement_start = false;
        previous = Some(word);
    }
    scan
}

/// `warning_count` or `error_count`, the counts of the diagnostics area.
fn is_diagnostics_count(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"warning_count") || name.eq_ignore_ascii_case(b"error_count")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word<'a> {
    Ident(&'a [u8]),
    UserVariable,
    /// `@@name` (the name only: `@@session.x` is this, `.` and `x`).
    SystemVariable(&'a [u8]),
    Semicolon,
    Other,
}

/// The words of SQL text, skipping strings, quoted names and comments.
struct Words<'a> {
    sql: &'a [u8],
    at: usize,
}

impl<'a> Words<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.sql.get(self.at + ahead).copied()
    }

    /// Skips past the closing `quote` (doubled or backslash-escaped quotes stay inside).
    fn skip_quoted(&mut self, quote: u8) {
        self.at += 1;
        while let Some(c) = self.peek(0) {
            self.at += 1;
            if c == b'\\' && quote != b'`' {
                self.at += 1;
            } else if c == quote {
                if self.peek(0) == Some(quote) {
                    self.at += 1;
                } else {
                    return;
                }
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            self.at += 1;
            if c == b'\n' {
                return;
            }
        }
    }

    fn next(&mut self) -> Option<Word<'a>> {
        loop {
            let c = self.peek(0)?;
            match c {
                b'\'' | b'"' | b'`' => self.skip_quoted(c),
                b'#' => self.skip_line(),
                b'-' if self.peek(1) == Some(b'-')
                    && self.peek(2).is_none_or(|c| c.is_ascii_whitespace()) =>
                {
                    self.skip_line()
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    if self.peek(2) == Some(b'!') {
                        // Executable comment: skip the marker and version digits, scan the body.
                        self.at += 3;
                        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                            self.at += 1;
                        }
                    } else {
                        self.at += 2;
                        while self.peek(0).is_some()
                            && !(self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/'))
                        {
                            self.at += 1;
                        }
                        self.at += 2;
                    }
                }
                b'*' if self.peek(1) == Some(b'/') => self.at += 2, // end of an executable comment
                b';' => {
                    self.at += 1;
                    return Some(Word::Semicolon);
                }
                b'@' => {
                    self.at += 1;
                    if self.peek(0) == Some(b'@') {
                        // A system variable: not a pin by itself.
                        self.at += 1;
                        return Some(Word::SystemVariable(self.ident()));
                    }
                    return Some(Word::UserVariable);
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                    return Some(Word::Ident(self.ident()));
                }
                c if c.is_ascii_whitespace() => self.at += 1,
                _ => {
                    self.at += 1;
                    return Some(Word::Other);
                }
            }
        }
    }

    fn ident(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80) {
            self.at += 1;
        }
        &self.sql[start..self.at.min(self.sql.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pins(sql: &str) -> Vec<PinReason> {
        scan(sql.as_bytes()).pins.iter().collect()
    }

    #[test]
    fn each_reason_is_found() {
        assert_eq!(pins("CREATE TEMPORARY TABLE t (a int)"), [PinReason::TemporaryTable]);
        assert_eq!(pins("lock tables t write"), [PinReason::LockTables]);
        assert_eq!(pins("SELECT GET_LOCK('x', 1)"), [PinReason::GetLock]);
        assert_eq!(pins("SET @a = 1"), [PinReason::UserVariable]);
        assert_eq!(pins("SELECT 1 INTO @a"), [PinReason::UserVariable]);
        assert_eq!(pins("PREPARE s FROM 'SELECT 1'"), [PinReason::Prepare]);
        assert_eq!(pins("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1"), [PinReason::FoundRows]);
        assert!(scan(b"UNLOCK TABLES").unlocks_tables);
        assert!(scan(b"  set time_zone = '+00:00'").is_set);
        assert!(scan(b"INSERT INTO c (p) VALUES (last_insert_id())").insert_id);
        assert!(scan(b"call add_order(1)").insert_id);
        assert!(!scan(b"SELECT 'LAST_INSERT_ID()', callers FROM t;").insert_id);
        assert!(scan(b"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)").insert_id);
        for diagnostics in [
            "SHOW WARNINGS",
            "show errors limit 1",
            "SHOW COUNT(*) WARNINGS",
            "GET DIAGNOSTICS @n = NUMBER",
            "SELECT @@warning_count",
            "SELECT @@session.error_count",
        ] {
            assert!(scan(diagnostics.as_bytes()).diagnostics, "{diagnostics}");
        }
        assert!(!scan(b"SHOW TABLES").diagnostics);
        assert!(!scan(b"SELECT 'SHOW WARNINGS', warnings FROM t").diagnostics);
    }

    #[test]
    fn strings_comments_and_system_variables_do_not_pin() {
        assert!(pins("SELECT '@a', \"GET_LOCK(\", `@b` FROM t").is_empty());
        assert!(pins("SELECT 1 -- @a\n, 2 # LOCK TABLES\n /* CREATE TEMPORARY */").is_empty());
        assert!(pins("SELECT @@sql_mode, @@session.time_zone").is_empty());
        assert!(pins("SELECT 'it''s @x', 'a\\'@b'").is_empty());
        assert!(pins("SELECT * FROM prepared_things WHERE lock_tables = 1").is_empty());
        assert_eq!(pins("/*!40101 SET @OLD = @@x */"), [PinReason::UserVariable]);
        assert!(!scan(b"SELECT 1; SELECT 2").is_set);
        assert!(scan(b"SELECT 1; SET a = 1").is_set);
    }

    proptest! {
        #[test]
        fn any_bytes_scan_without_panic(sql in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = scan(&sql);
        }
    }
}
