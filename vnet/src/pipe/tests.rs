use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_in_order_and_complete_through_a_small_buffer() {
    let (mut a, mut b) = duplex(1024);
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = sent.clone();
    let writer = tokio::spawn(async move {
        a.write_all(&sent).await.unwrap();
        a.shutdown().await.unwrap();
        a
    });
    let mut received = Vec::new();
    b.read_to_end(&mut received).await.unwrap();
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "bytes differ");
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn half_close_lets_the_other_direction_continue() {
    let (mut a, mut b) = duplex(64);
    a.write_all(b"request").await.unwrap();
    a.shutdown().await.unwrap();
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    b.write_all(b"response").await.unwrap();
    drop(b);
    let mut back = Vec::new();
    a.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"response");
    let err = a.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn writing_to_a_dropped_reader_is_a_broken_pipe() {
    let (writer, reader) = pipe(16);
    assert_eq!(writer.try_write(b"abc").unwrap(), 3);
    drop(reader);
    assert_eq!(writer.try_write(b"d").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    assert!(writer.writable_len().is_err());
}

#[test]
fn a_full_pipe_accepts_nothing_until_read_and_then_wakes_the_writer() {
    let (writer, reader) = pipe(4);
    assert_eq!(writer.try_write(b"abcdef").unwrap(), 4);
    assert_eq!(writer.try_write(b"g").unwrap(), 0);
    let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waker = Waker::from(Arc::new(Flag(woken.clone())));
    assert!(writer.poll_writable(&mut Context::from_waker(&waker)).is_pending());
    let mut out = [0u8; 2];
    assert_eq!(reader.try_read(&mut out), ReadOutcome::Data(2));
    assert_eq!(&out, b"ab");
    assert!(woken.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(writer.try_write(b"gh").unwrap(), 2);
    let mut rest = [0u8; 8];
    assert_eq!(reader.try_read(&mut rest), ReadOutcome::Data(4));
    assert_eq!(&rest[..4], b"cdgh");
    assert_eq!(reader.try_read(&mut rest), ReadOutcome::Empty);
    drop(writer);
    assert_eq!(reader.try_read(&mut rest), ReadOutcome::Eof);
}

#[test]
fn a_drained_buffer_gives_its_memory_back_unless_it_is_streaming() {
    let (writer, reader) = pipe(DEFAULT_CAPACITY);
    let mut out = vec![0u8; DEFAULT_CAPACITY];
    // Below the window: shrunk as soon as it is drained.
    assert_eq!(writer.try_write(&vec![7u8; DEFAULT_CAPACITY / 2]).unwrap(), DEFAULT_CAPACITY / 2);
    assert_eq!(reader.try_read(&mut out), ReadOutcome::Data(DEFAULT_CAPACITY / 2));
    assert!(reader.0.lock().buf.capacity() <= IDLE_KEEP);
    // A full window keeps its buffer for a while...
    assert_eq!(writer.try_write(&vec![7u8; DEFAULT_CAPACITY]).unwrap(), DEFAULT_CAPACITY);
    assert_eq!(reader.try_read(&mut out), ReadOutcome::Data(DEFAULT_CAPACITY));
    assert!(reader.0.lock().buf.capacity() >= DEFAULT_CAPACITY);
    // ...and gives it back once the traffic stays small.
    for _ in 0..STREAMING_DRAINS {
        assert_eq!(writer.try_write(b"x").unwrap(), 1);
        assert_eq!(reader.try_read(&mut out), ReadOutcome::Data(1));
    }
    assert!(reader.0.lock().buf.capacity() <= IDLE_KEEP);
}

struct Flag(Arc<std::sync::atomic::AtomicBool>);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
