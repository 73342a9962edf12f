//! The words of SQL text as a server reads it in a given SQL dialect: identifiers, user and
//! system variables and statement ends, with strings, quoted names and comments skipped.
//! Executable comments (`/*! ... */`, `/*M! ... */`, with or without a version) are reported
//! and their bodies read as SQL, because the server runs them.

/// How the session's `sql_mode` makes a server read quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dialect {
    /// A backslash escapes the next character inside `'...'` (and `"..."` strings); off under
    /// `NO_BACKSLASH_ESCAPES`.
    pub backslash_escapes: bool,
    /// `"..."` is a quoted name, in which a backslash is an ordinary character (`ANSI_QUOTES`,
    /// and the combination modes that include it).
    pub ansi_quotes: bool,
}

impl Dialect {
    /// Every reading: a scan that does not know the session's `sql_mode` takes them all.
    pub const ALL: [Dialect; 4] = [
        Dialect { backslash_escapes: true, ansi_quotes: false },
        Dialect { backslash_escapes: false, ansi_quotes: false },
        Dialect { backslash_escapes: true, ansi_quotes: true },
        Dialect { backslash_escapes: false, ansi_quotes: true },
    ];

    /// The reading a `sql_mode` value (as `@@sql_mode` shows it) stands for.
    pub fn of_sql_mode(sql_mode: &str) -> Dialect {
        let mut dialect = Dialect { backslash_escapes: true, ansi_quotes: false };
        for mode in sql_mode.split(',').map(str::trim) {
            let is = |name: &str| mode.eq_ignore_ascii_case(name);
            if is("NO_BACKSLASH_ESCAPES") {
                dialect.backslash_escapes = false;
            }
            // The combination modes that switch ANSI_QUOTES on (MariaDB and MySQL).
            if ["ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL"].into_iter().any(is) {
                dialect.ansi_quotes = true;
            }
        }
        dialect
    }
}

/// One word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'a> {
    /// An unquoted identifier or keyword.
    Ident(&'a [u8]),
    /// `@name` or `@'name'`.
    UserVariable,
    /// `@@name` or `@@session.name` (the name only).
    SystemVariable(&'a [u8]),
    /// The start of an executable comment.
    ExecutableComment,
    /// `;`.
    Semicolon,
    /// Any other character outside strings and comments.
    Other,
}

/// The words of SQL text.
pub struct Words<'a> {
    sql: &'a [u8],
    at: usize,
    dialect: Dialect,
}

impl<'a> Words<'a> {
    /// Reads `sql` as `dialect` does.
    pub fn new(sql: &'a [u8], dialect: Dialect) -> Self {
        Words { sql, at: 0, dialect }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.sql.get(self.at + ahead).copied()
    }

    /// Skips past the closing `quote` (a doubled quote stays inside; so does an escaped one
    /// where the dialect escapes with backslashes).
    fn skip_quoted(&mut self, quote: u8) {
        let escapes = match quote {
            b'`' => false,
            b'"' => self.dialect.backslash_escapes && !self.dialect.ansi_quotes,
            _ => self.dialect.backslash_escapes,
        };
        self.at += 1;
        while let Some(c) = self.peek(0) {
            self.at += 1;
            if c == b'\\' && escapes {
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

    /// The next word, or `None` at the end of the text.
    pub fn next_word(&mut self) -> Option<Word<'a>> {
        loop {
            let c = self.peek(0)?;
            match c {
                b'\'' | b'"' | b'`' => self.skip_quoted(c),
                b'#' => self.skip_line(),
                b'-' if self.peek(1) == Some(b'-')
                    && self.peek(2).is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
                {
                    self.skip_line()
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    let marker = match (self.peek(2), self.peek(3)) {
                        (Some(b'!'), _) => Some(3),
                        (Some(b'M' | b'm'), Some(b'!')) => Some(4),
                        _ => None,
                    };
                    match marker {
                        Some(marker) => {
                            // Executable comment: skip the marker and version, read the body.
                            self.at += marker;
                            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                                self.at += 1;
                            }
                            return Some(Word::ExecutableComment);
                        }
                        None => {
                            self.at += 2;
                            while self.peek(0).is_some()
                                && !(self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/'))
                            {
                                self.at += 1;
                            }
                            self.at += 2;
                        }
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
                        self.at += 1;
                        let name = self.ident();
                        let scoped = [&b"session"[..], b"global", b"local"]
                            .iter()
                            .any(|s| name.eq_ignore_ascii_case(s));
                        if scoped && self.peek(0) == Some(b'.') {
                            self.at += 1;
                            return Some(Word::SystemVariable(self.ident()));
                        }
                        return Some(Word::SystemVariable(name));
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
        let start = self.at.min(self.sql.len());
        while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80) {
            self.at += 1;
        }
        &self.sql[start..self.at.min(self.sql.len())]
    }
}
