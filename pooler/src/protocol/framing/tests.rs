use super::*;
use proptest::prelude::*;

fn pair(max: usize) -> (PacketConn<tokio::io::DuplexStream>, PacketConn<tokio::io::DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (PacketConn::new(a, max), PacketConn::new(b, max))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

#[test]
fn payloads_round_trip_across_chunk_boundaries() {
    block_on(async {
        let (mut w, mut r) = pair(40 << 20);
        let sizes = [0usize, 1, 4, MAX_CHUNK - 1, MAX_CHUNK, MAX_CHUNK + 1, 2 * MAX_CHUNK];
        let writer = tokio::spawn(async move {
            let mut seq = Sequence::new();
            for (i, size) in sizes.iter().enumerate() {
                let payload: Vec<u8> = (0..*size).map(|j| (i + j) as u8).collect();
                w.write_packet(&mut seq, &payload).await.expect("write");
            }
            w.flush().await.expect("flush");
            seq
        });
        let mut seq = Sequence::new();
        for (i, size) in sizes.iter().enumerate() {
            let got = r.read_packet(&mut seq).await.expect("read").expect("a packet");
            assert_eq!(got.len(), *size);
            assert!(got.iter().enumerate().all(|(j, b)| *b == (i + j) as u8), "payload {i} corrupted");
        }
        // Chunks: 1 each for the small ones, 2 for MAX_CHUNK and MAX_CHUNK + 1, 3 for 2 * MAX_CHUNK.
        let written = writer.await.expect("writer");
        assert_eq!(written, seq);
        assert_eq!(seq.next(), 4 + 2 + 2 + 3);
    });
}

#[test]
fn clean_end_between_packets_is_none_and_inside_is_truncated() {
    block_on(async {
        let (a, b) = tokio::io::duplex(64);
        drop(a);
        let mut r = PacketConn::new(b, 1024);
        assert!(r.read_packet(&mut Sequence::new()).await.expect("clean end").is_none());

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[10, 0, 0, 0, 1, 2, 3]).await.expect("write");
        drop(a);
        let mut r = PacketConn::new(b, 1024);
        assert!(matches!(r.read_packet(&mut Sequence::new()).await, Err(FrameError::Truncated)));
    });
}

#[test]
fn oversized_and_out_of_order_packets_are_refused() {
    block_on(async {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 1, 0, 0]).await.expect("write");
        let mut r = PacketConn::new(b, 255);
        let err = r.read_packet(&mut Sequence::new()).await.expect_err("too large");
        assert!(matches!(err, FrameError::TooLarge { size: 256, limit: 255 }), "{err}");

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[1, 0, 0, 5, 0x0e]).await.expect("write");
        let mut r = PacketConn::new(b, 255);
        let err = r.read_packet(&mut Sequence::new()).await.expect_err("out of order");
        assert!(matches!(err, FrameError::OutOfOrder { got: 5, expected: 0 }), "{err}");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of payloads written comes back whole and in order, with the sequence ids
    /// both sides count alike, however the stream cuts the bytes (the duplex buffer is small).
    #[test]
    fn written_payloads_read_back(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..12),
        start in any::<u8>(),
    ) {
        block_on(async {
            let (a, b) = tokio::io::duplex(997);
            let (mut w, mut r) = (PacketConn::new(a, 1 << 20), PacketConn::new(b, 1 << 20));
            let sent = payloads.clone();
            let writer = tokio::spawn(async move {
                let mut seq = Sequence::at(start);
                for payload in &sent {
                    w.write_packet(&mut seq, payload).await.expect("write");
                }
                w.flush().await.expect("flush");
                seq
            });
            let mut seq = Sequence::at(start);
            for payload in &payloads {
                let got = r.read_packet(&mut seq).await.expect("read").expect("a packet");
                assert_eq!(&got[..], &payload[..]);
            }
            assert_eq!(writer.await.expect("writer"), seq);
        });
    }

    /// Whatever bytes arrive, the reader returns packets, a clean end or an error; it never
    /// panics and never buffers a payload over its cap.
    #[test]
    fn arbitrary_input_never_panics(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        block_on(async {
            let (mut a, b) = tokio::io::duplex(4096);
            a.write_all(&input).await.expect("write");
            drop(a);
            let mut r = PacketConn::new(b, 300);
            let mut seq = Sequence::new();
            for _ in 0..input.len() + 1 {
                match r.read_packet(&mut seq).await {
                    Ok(Some(p)) => assert!(p.len() <= 300),
                    Ok(None) | Err(_) => break,
                }
            }
        });
    }
}
