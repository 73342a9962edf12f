//! A session's `LAST_INSERT_ID()`: session state that no tracking reports, kept by the pooler
//! so that one client never sees another's insert id.
//!
//! A statement that reads or sets it (or calls a procedure, or runs several statements) first
//! gets the session's own value on its connection (`DO LAST_INSERT_ID(n)`, after reading back
//! anything pending), and the session takes whatever the connection holds after it. Any other
//! statement whose OK reports an insert id may have generated one; the connection's value is
//! read back (`SELECT LAST_INSERT_ID()`) before the session gives the connection up, and taken
//! only if it is an id such a statement reported: an OK also reports ids the function does not
//! take (an explicit id, `ON DUPLICATE KEY UPDATE`, `REPLACE`), and then the value read is
//! someone else's. A session that keeps its connection (transaction, pin, `session` mode)
//! pays nothing until it lets go; one that will let it go right after an `INSERT` has the read
//! queued behind the statement in the same write (one small statement, no round trip).
//!
//! With [`InsertIds::Reported`] a pool skips the read-back and takes the id an OK reports, as
//! `mysql_insert_id()` and ProxySQL do: no cost, and a session still sees only its own ids,
//! but after an explicit id, `ON DUPLICATE KEY UPDATE` or `REPLACE` its `LAST_INSERT_ID()` is
//! the reported id where a server's would have kept the earlier one.

/// How a pool learns what `LAST_INSERT_ID()` is for each session after an insert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InsertIds {
    /// As the server's: the connection's value is read back (`SELECT LAST_INSERT_ID()`)
    /// and taken only where the statement generated it.
    #[default]
    Exact,
    /// The id the last OK reported, without a read-back (differs from the server's after an
    /// explicit id, `ON DUPLICATE KEY UPDATE` or `REPLACE`).
    Reported,
}

/// Ids remembered while a connection is held, before the value is read back anyway.
const MAX_REPORTED: usize = 64;

/// What the held connection's `LAST_INSERT_ID()` means to the session, once read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pending {
    /// A statement that sets it ran: the value read is the session's.
    adopt: bool,
    /// Ids the OKs reported since the connection was taken (at most [`MAX_REPORTED`]).
    reported: Vec<u64>,
}

/// One session's `LAST_INSERT_ID()`.
#[derive(Debug, Default)]
pub(super) struct InsertId {
    /// Its value as last known.
    value: u64,
    /// The held connection may hold a newer value of this session's.
    pending: Option<Pending>,
    /// How reported ids are taken.
    mode: InsertIds,
}

impl InsertId {
    /// A session's, starting from 0, learning reported ids as `mode` says.
    pub(super) fn new(mode: InsertIds) -> Self {
        InsertId { mode, ..InsertId::default() }
    }

    /// Whether a statement's value is read back from its connection.
    pub(super) fn reads_back(&self) -> bool {
        self.mode == InsertIds::Exact
    }

    /// The value as last known (newer on the held connection while something is pending).
    pub(super) fn value(&self) -> u64 {
        self.value
    }

    /// Whether the held connection's value is surely the session's: a statement that sets it
    /// ran there (after the session's own value was put there), and nothing since could have
    /// put another session's back.
    pub(super) fn connection_holds_own(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.adopt)
    }

    /// After a statement on the held connection: `sets` if it reads or sets the value, and
    /// the insert id its last OK reported. Whether the connection's value may have changed.
    pub(super) fn ran(&mut self, sets: bool, reported: Option<u64>) -> bool {
        if !sets && reported.is_none() {
            return false;
        }
        if let (InsertIds::Reported, false, None, Some(id)) = (self.mode, sets, &self.pending, reported) {
            self.value = id;
            return true;
        }
        let pending = self.pending.get_or_insert_with(Pending::default);
        pending.adopt |= sets;
        if let Some(id) = reported {
            if pending.reported.len() >= MAX_REPORTED {
                pending.adopt = true; // too many to tell apart: take what is read
            } else {
                pending.reported.push(id);
            }
        }
        true
    }

    /// Whether the held connection may hold a newer value of the session's.
    pub(super) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// After a statement that set nothing, which reported insert id `reported`, with `value`
    /// read from its connection right behind it: what was pending is settled.
    pub(super) fn ran_and_read(&mut self, reported: Option<u64>, value: u64) {
        if self.ran(false, reported)
            && let Some(pending) = self.take_pending()
        {
            self.read(&pending, value);
        }
    }

    /// Whether the connection must be read before it goes: what is pending, taken.
    pub(super) fn take_pending(&mut self) -> Option<Pending> {
        self.pending.take()
    }

    /// Takes in the value read back for `pending`.
    pub(super) fn read(&mut self, pending: &Pending, value: u64) {
        if pending.adopt || pending.reported.contains(&value) {
            self.value = value;
        }
    }

    /// The held connection is gone (broken) or reset: nothing is pending on it.
    pub(super) fn forget_pending(&mut self) {
        self.pending = None;
    }

    /// `COM_RESET_CONNECTION`: the session starts from 0, as on a server.
    pub(super) fn reset(&mut self) {
        *self = InsertId::new(self.mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_id_counts_only_if_the_function_took_it() {
        let mut id = InsertId::default();
        assert_eq!(id.value(), 0);
        id.ran(false, Some(7)); // generated 7
        assert!(!id.connection_holds_own(), "or was it an explicit id? only a read tells");
        let pending = id.take_pending().expect("pending");
        id.read(&pending, 7);
        assert_eq!(id.value(), 7);

        id.ran(false, Some(100)); // an explicit id: the function kept someone else's 3
        let pending = id.take_pending().expect("pending");
        id.read(&pending, 3);
        assert_eq!(id.value(), 7);

        id.ran(true, None); // SELECT LAST_INSERT_ID(42)
        id.ran(false, Some(100));
        assert!(id.connection_holds_own());
        let pending = id.take_pending().expect("pending");
        id.read(&pending, 42);
        assert_eq!(id.value(), 42);

        id.ran(false, None);
        assert_eq!(id.take_pending(), None, "a statement that reports no id changes nothing");
        id.reset();
        assert_eq!(id.value(), 0);
    }

    #[test]
    fn reported_ids_are_taken_as_reported_unless_a_set_is_pending() {
        let mut id = InsertId::new(InsertIds::Reported);
        assert!(id.ran(false, Some(100)), "the connection's value may have changed");
        assert_eq!((id.value(), id.take_pending()), (100, None), "no read-back");
        id.ran(true, None); // SELECT LAST_INSERT_ID(42): only a read tells
        id.ran(false, Some(7));
        let pending = id.take_pending().expect("pending");
        id.read(&pending, 42);
        assert_eq!(id.value(), 42);
        id.reset();
        id.ran(false, Some(9));
        assert_eq!(id.value(), 9, "a reset keeps the mode");
    }

    #[test]
    fn many_ids_while_held_fall_back_to_the_value_read() {
        let mut id = InsertId::default();
        for n in 0..=MAX_REPORTED as u64 {
            id.ran(false, Some(1000 + n));
        }
        let pending = id.take_pending().expect("pending");
        id.read(&pending, 5);
        assert_eq!(id.value(), 5);
    }
}
