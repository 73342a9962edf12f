//! Text result sets the pooler writes itself (the admin interface's answers, drivers' set-up
//! reads): column
//! definitions of `VARCHAR` columns, rows of strings or NULLs, and the terminator in the form
//! the client negotiated.

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};

use super::framing::{PacketConn, Sequence};
use super::packets::{self, EOF_HEADER, put_lenenc};

/// `MYSQL_TYPE_VAR_STRING`.
const VAR_STRING: u8 = 0xFD;
/// `utf8mb4_general_ci`.
const UTF8MB4: u16 = 45;

fn put_lenenc_str(out: &mut Vec<u8>, text: &[u8]) {
    put_lenenc(out, text.len() as u64);
    out.extend_from_slice(text);
}

/// The definition packet of a string column called `name`.
pub fn column(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 2 * name.len());
    for part in [&b"def"[..], b"", b"", b"", name.as_bytes(), name.as_bytes()] {
        put_lenenc_str(&mut out, part);
    }
    out.push(0x0c);
    out.extend_from_slice(&UTF8MB4.to_le_bytes());
    out.extend_from_slice(&1024u32.to_le_bytes());
    out.push(VAR_STRING);
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.push(0); // decimals
    out.extend_from_slice(&[0, 0]);
    out
}

/// A text row: each value a length-encoded string, NULL as 0xFB.
pub fn row(values: &[Option<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Some(text) => put_lenenc_str(&mut out, text.as_bytes()),
            None => out.push(0xFB),
        }
    }
    out
}

/// Writes a whole result set as the answer to the command whose exchange is `seq`.
pub async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketConn<S>,
    seq: &mut Sequence,
    caps: CapabilityFlags,
    status: StatusFlags,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
) -> std::io::Result<()> {
    let mut count = Vec::new();
    put_lenenc(&mut count, columns.len() as u64);
    conn.write_packet(seq, &count).await?;
    for name in columns {
        conn.write_packet(seq, &column(name)).await?;
    }
    let deprecate_eof = caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    if !deprecate_eof {
        conn.write_packet(seq, &packets::eof(0, status)).await?;
    }
    for values in rows {
        conn.write_packet(seq, &row(values)).await?;
    }
    let terminator = if deprecate_eof {
        let mut ok = packets::ok(status, caps);
        ok[0] = EOF_HEADER;
        ok
    } else {
        packets::eof(0, status)
    };
    conn.send(seq, &terminator).await
}
