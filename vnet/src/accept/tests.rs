use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Limits, Network};

const PORT: &str = "127.0.0.1:3306";

fn addr() -> SocketAddr {
    PORT.parse().expect("addr")
}

/// Runs `task` on a single-threaded runtime on a thread of its own named `name`.
fn on_thread<F, Fut>(name: &str, task: F) -> std::thread::JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(task())
        })
        .expect("thread")
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

#[test]
fn a_connection_is_accepted_on_the_thread_it_was_made_from() {
    let network = Network::new("acme", Limits::default());
    let listener = Arc::new(network.listen(addr(), 256).expect("listen"));
    let (accepted_tx, accepted_rx) = mpsc::channel::<(String, String)>();
    let per_thread = 20;
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = (0..2).map(|_| mpsc::channel::<()>()).unzip::<_, _, Vec<_>, Vec<_>>();
    let mut threads = Vec::new();
    for (i, go) in go_rx.into_iter().enumerate() {
        let (listener, network, accepted, ready) =
            (listener.clone(), network.clone(), accepted_tx.clone(), ready_tx.clone());
        threads.push(on_thread(&format!("shard-{i}"), move || async move {
            let mut acceptor = listener.acceptor();
            // Registers this thread: poll once before anyone connects.
            assert!(futures_poll_once(&mut acceptor).is_none());
            ready.send(()).expect("ready");
            go.recv().expect("go");
            let mut clients = Vec::new();
            for _ in 0..per_thread {
                let mut client = network.connect(addr()).expect("connect");
                client.write_all(thread_name().as_bytes()).await.expect("say who");
                client.shutdown().await.expect("shutdown");
                clients.push(client);
            }
            for _ in 0..per_thread {
                let mut server = acceptor.accept().await;
                let mut from = String::new();
                server.read_to_string(&mut from).await.expect("read");
                accepted.send((from, thread_name())).expect("report");
            }
        }));
    }
    for _ in 0..2 {
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("acceptors ready");
    }
    for go in go_tx {
        go.send(()).expect("go");
    }
    for thread in threads {
        thread.join().expect("shard thread");
    }
    drop(accepted_tx);
    let accepted: Vec<(String, String)> = accepted_rx.iter().collect();
    assert_eq!(accepted.len(), 2 * per_thread);
    for (from, by) in &accepted {
        assert_eq!(from, by, "a connection made on {from} was accepted on {by}");
    }
}

#[test]
fn connections_from_elsewhere_and_of_a_gone_acceptor_reach_the_others() {
    let network = Network::new("acme", Limits::default());
    let listener = Arc::new(network.listen(addr(), 256).expect("listen"));
    // An acceptor registers on a thread, connections are made there, and it goes away unpolled.
    let (l, n) = (listener.clone(), network.clone());
    let stranded = on_thread("gone", move || async move {
        let mut acceptor = l.acceptor();
        assert!(futures_poll_once(&mut acceptor).is_none());
        let clients: Vec<_> = (0..3).map(|_| n.connect(addr()).expect("connect")).collect();
        drop(acceptor);
        clients
    })
    .join()
    .expect("thread");
    // And three from this thread, where no acceptor runs.
    let here: Vec<_> = (0..3).map(|_| network.connect(addr()).expect("connect")).collect();
    assert_eq!(listener.pending(), 6);
    let l = listener.clone();
    let taken = on_thread("other", move || async move {
        let mut acceptor = l.acceptor();
        for _ in 0..6 {
            tokio::time::timeout(Duration::from_secs(5), acceptor.accept()).await.expect("accepted");
        }
    });
    taken.join().expect("every connection reached the remaining acceptor");
    assert_eq!(listener.pending(), 0);
    drop((stranded, here));
}

/// Polls `acceptor` once (registering its thread); the connection if one was ready.
fn futures_poll_once(acceptor: &mut crate::Acceptor) -> Option<crate::Connection> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match acceptor.poll_accept(&mut cx) {
        std::task::Poll::Ready(connection) => Some(connection),
        std::task::Poll::Pending => None,
    }
}
