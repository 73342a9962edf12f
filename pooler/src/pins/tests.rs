use super::*;
use proptest::prelude::*;

fn pins(sql: &str) -> Vec<PinReason> {
    scan(sql.as_bytes(), None).pins.iter().collect()
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
    assert!(scan(b"UNLOCK TABLES", None).unlocks_tables);
    assert!(scan(b"  set time_zone = '+00:00'", None).is_set);
    assert!(scan(b"INSERT INTO c (p) VALUES (last_insert_id())", None).insert_id);
    assert!(scan(b"call add_order(1)", None).insert_id);
    assert!(!scan(b"SELECT 'LAST_INSERT_ID()', callers FROM t;", None).insert_id);
    for sql in ["INSERT INTO t VALUES (1)", " replace t SET a = 1", "LOAD DATA INFILE 'f' INTO TABLE t"] {
        assert!(scan(sql.as_bytes(), None).may_insert, "{sql}");
    }
    for sql in ["SELECT 'INSERT'", "UPDATE t SET a = 1", "/* INSERT */ DELETE FROM t"] {
        assert!(!scan(sql.as_bytes(), None).may_insert, "{sql}");
    }
    assert!(scan(b"commit", None).ends_transaction && scan(b"ROLLBACK WORK", None).ends_transaction);
    assert!(!scan(b"SELECT 'COMMIT'", None).ends_transaction);
    assert!(scan(b"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", None).insert_id);
    for diagnostics in [
        "SHOW WARNINGS",
        "show errors limit 1",
        "SHOW COUNT(*) WARNINGS",
        "GET DIAGNOSTICS @n = NUMBER",
        "SELECT @@warning_count",
        "SELECT @@session.error_count",
    ] {
        assert!(scan(diagnostics.as_bytes(), None).reads_previous, "{diagnostics}");
    }
    assert!(!scan(b"SHOW TABLES", None).reads_previous);
    assert!(!scan(b"SELECT 'SHOW WARNINGS', warnings FROM t", None).reads_previous);
}

#[test]
fn strings_comments_and_system_variables_do_not_pin() {
    assert!(pins("SELECT '@a', \"GET_LOCK(\", `@b` FROM t").is_empty());
    assert!(pins("SELECT 1 -- @a\n, 2 # LOCK TABLES\n /* CREATE TEMPORARY */").is_empty());
    assert!(pins("SELECT @@sql_mode, @@session.time_zone").is_empty());
    assert!(scan(b"SELECT 'it''s @x', 'a\\'@b'", Some("STRICT_TRANS_TABLES")).pins.is_empty());
    assert!(pins("SELECT * FROM prepared_things WHERE lock_tables = 1").is_empty());
    assert_eq!(pins("/*!40101 SET @OLD = @@x */"), [PinReason::UserVariable, PinReason::ExecutableComment]);
    assert!(!scan(b"SELECT 1; SELECT 2", None).is_set);
    assert!(scan(b"SELECT 1; SET a = 1", None).is_set);
}

#[test]
fn what_the_scan_cannot_see_pins() {
    use PinReason::*;
    let cases: [(&str, &[PinReason]); 16] = [
        ("CALL p()", &[Routine]),
        ("EXECUTE IMMEDIATE 'SET @s = 1'", &[Routine]),
        ("execute s using @a", &[UserVariable, Routine]),
        ("HANDLER t OPEN", &[Handler]),
        ("XA START 'x'", &[XaTransaction]),
        ("SELECT NEXTVAL(s), LASTVAL(s)", &[Sequence]),
        ("SELECT NEXT VALUE FOR s", &[Sequence]),
        ("select previous value for s", &[Sequence]),
        ("SELECT SETVAL(s, 5)", &[Sequence]),
        ("/*M! SELECT 1 */", &[ExecutableComment]),
        ("/*M!100100 CREATE TEMPORARY TABLE t (a INT) */", &[TemporaryTable, ExecutableComment]),
        ("/*!50000 CREATE TEMPORARY TABLE t (a INT) */", &[TemporaryTable, ExecutableComment]),
        ("CREATE OR REPLACE TEMPORARY TABLE t AS SELECT 1", &[TemporaryTable]),
        ("SET time_zone = '+01:00'; CREATE OR REPLACE TEMPORARY TABLE t (a INT)", &[TemporaryTable]),
        ("BACKUP STAGE START", &[UnknownStatement]),
        ("SELECT 1; HANDLER t OPEN", &[Handler]),
    ];
    for (sql, expected) in cases {
        assert_eq!(pins(sql), expected, "{sql}");
    }
    for sql in ["SELECT @@identity", "SELECT @@session.last_insert_id", "SELECT @@IDENTITY + 1"] {
        assert!(scan(sql.as_bytes(), None).insert_id, "{sql}");
    }
    for sql in ["SELECT FOUND_ROWS()", "SELECT ROW_COUNT()"] {
        assert!(scan(sql.as_bytes(), None).reads_previous, "{sql}");
    }
}

#[test]
fn the_scan_reads_quotes_as_the_sessions_sql_mode_does() {
    let backslash = b"SELECT 'a\\', @x, 'b'";
    assert!(scan(backslash, Some("STRICT_TRANS_TABLES")).pins.is_empty());
    assert!(
        scan(backslash, Some("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES"))
            .pins
            .contains(PinReason::UserVariable)
    );
    assert!(scan(backslash, None).pins.contains(PinReason::UserVariable), "an unknown mode reads every way");
    let ansi = b"SELECT \"a\\\", @x, \"b\" FROM t";
    assert!(scan(ansi, Some("")).pins.is_empty());
    assert!(scan(ansi, Some("ANSI_QUOTES")).pins.contains(PinReason::UserVariable));
    assert!(scan(ansi, Some("REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI")).pins.contains(PinReason::UserVariable));
    // A statement that changes the mode for the next one: every reading.
    let changes = b"SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\', @x, 'b'";
    assert!(scan(changes, Some("")).pins.contains(PinReason::UserVariable));
}

#[test]
fn only_a_lone_set_or_use_explains_a_reported_state_change() {
    for sql in ["SET time_zone = '+01:00'", "use shop;", "SET NAMES utf8mb4, autocommit = 0"] {
        assert!(scan(sql.as_bytes(), None).changes_only_tracked_state, "{sql}");
    }
    for sql in [
        "SET time_zone = '+01:00'; CREATE OR REPLACE TEMPORARY TABLE t (a INT)",
        "SET STATEMENT max_statement_time = 1 FOR SELECT 1",
        "SELECT 1",
        "DEALLOCATE PREPARE s",
    ] {
        assert!(!scan(sql.as_bytes(), None).changes_only_tracked_state, "{sql}");
    }
    assert!(scan(b"set statement sql_mode = '' for select 1", None).statement_scoped_set);
    for (sql, uses) in [
        ("SELECT a FROM t", true),
        ("select * from a join b", true),
        ("INSERT INTO t VALUES (1)", true),
        ("DROP TEMPORARY TABLE IF EXISTS t", true),
        ("SELECT 1 FROM DUAL", false),
        ("SELECT 1", false),
        ("SET time_zone = '+01:00'", false),
        ("SELECT 'FROM t'", false),
        ("SHOW WARNINGS", false),
    ] {
        assert_eq!(scan(sql.as_bytes(), None).uses_table, uses, "{sql}");
    }
    assert!(!scan(b"UNLOCK TABLES; LOCK TABLES t READ", None).unlocks_tables);
    assert!(scan(b"kill query 12", None).kills && scan(b"SELECT 1; KILL 3", None).kills);
    assert!(!scan(b"SELECT 'KILL 3'", None).kills);
}

/// Statements that pin, each with the reason it must be found for.
const PINNING: [(&str, PinReason); 8] = [
    ("CREATE TEMPORARY TABLE t (a INT)", PinReason::TemporaryTable),
    ("LOCK TABLES t READ", PinReason::LockTables),
    ("SELECT GET_LOCK('l', 0)", PinReason::GetLock),
    ("SET @v = 1", PinReason::UserVariable),
    ("CALL p()", PinReason::Routine),
    ("HANDLER t OPEN", PinReason::Handler),
    ("SELECT NEXTVAL(s)", PinReason::Sequence),
    ("XA START 'x'", PinReason::XaTransaction),
];

/// Space and comments as a server skips them.
fn filler() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(" ".to_owned()),
            Just("\n\t".to_owned()),
            "[a-z ]{0,12}".prop_map(|t| format!("/* {t} */")),
            "[a-z ]{0,12}".prop_map(|t| format!("# {t}\n")),
            "[a-z ]{0,12}".prop_map(|t| format!("-- {t}\n")),
        ],
        0..4,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn quoted_or_commented_pinning_text_never_pins(
        which in 0..PINNING.len(),
        quote in prop_oneof![Just('\''), Just('"'), Just('`')],
        comment in any::<bool>(),
        mode in prop_oneof![Just(None), Just(Some("")), Just(Some("ANSI_QUOTES")), Just(Some("NO_BACKSLASH_ESCAPES"))],
    ) {
        let (text, _) = PINNING[which];
        let sql = if comment {
            format!("SELECT 1 /* {text} */")
        } else {
            let doubled = text.replace(quote, &format!("{quote}{quote}"));
            format!("SELECT {quote}{doubled}{quote} FROM t")
        };
        let found = scan(sql.as_bytes(), mode);
        prop_assert!(found.pins.is_empty(), "{sql:?} pinned for {:?}", found.pins);
    }

    #[test]
    fn pinning_statements_pin_whatever_surrounds_them(
        which in 0..PINNING.len(),
        before in filler(),
        after in filler(),
        upper in any::<bool>(),
        semicolon in any::<bool>(),
    ) {
        let (text, reason) = PINNING[which];
        let text = if upper { text.to_ascii_uppercase() } else { text.to_ascii_lowercase() };
        let sql = format!("{before}{text}{after}{}", if semicolon { ";" } else { "" });
        prop_assert!(scan(sql.as_bytes(), None).pins.contains(reason), "{sql:?} did not pin for {reason}");
    }

    #[test]
    fn any_bytes_scan_without_panic(sql in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = scan(&sql, None);
        let _ = scan(&sql, Some("NO_BACKSLASH_ESCAPES,ANSI_QUOTES"));
    }
}
