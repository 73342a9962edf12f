//! A reference model of two workloads' virtual networks, and an interpreter that applies an
//! arbitrary byte string as a sequence of bind / listen / connect / accept / write / read /
//! shutdown / close operations to both the real [`Network`]s and the model, checking after each
//! step that they agree. Shared by the proptest (`tests/network_model.rs`, run in CI) and the
//! cargo-fuzz target (`fuzz/fuzz_targets/vnet_ops.rs`).
//!
//! What the model guarantees when a run finishes without panicking: nothing is delivered across
//! workloads (each workload has its own model, and a connect only succeeds where that model has a
//! listener), a port has at most one listener (binds conflict exactly as modelled), a freed port
//! can be bound again, bytes arrive in order and complete (every read is checked against the
//! modelled buffer), end of file comes only after the last byte, and nothing panics.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use switchyard_vnet::pipe::ReadOutcome;
use switchyard_vnet::ports::EPHEMERAL;
use switchyard_vnet::{BindError, BoundPort, ConnectError, Connection, Limits, Listener, Network};

/// Bytes buffered per direction: small, so that full buffers happen often.
const CAPACITY: usize = 97;

/// The addresses operations pick from; the last one is not on any virtual network.
const IPS: [IpAddr; 8] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    // 127.0.0.1 written IPv4-mapped and as 6to4: the same virtual address as IPS[0].
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2002, 0x7f00, 1, 0, 0, 0, 0, 0)),
];

/// The address a connect to `ip` reaches, written out for the forms in [`IPS`] (the model does
/// not ask the code under test).
fn reached(ip: IpAddr) -> IpAddr {
    if ip == IPS[6] || ip == IPS[7] { IPS[0] } else { ip }
}

/// Reads operation parameters from the input; zero once it is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn pick(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.byte() as usize % n }
    }
}

/// One direction of a connection, as the model sees it.
#[derive(Debug, Default)]
struct Direction {
    buf: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
}

/// A socket: bound, or listening with the connections it holds unaccepted.
enum Socket {
    Bound { net: usize, port: BoundPort },
    Listening { net: usize, listener: Listener, backlog: usize, pending: VecDeque<usize> },
}

/// One end of a connection: the real end (none while it waits in a listener's queue), the
/// directions it writes and reads, and the address it holds (client ends hold a local port).
struct End {
    net: usize,
    real: Option<Connection>,
    out_dir: usize,
    in_dir: usize,
    holds: Option<SocketAddr>,
    peer_local: SocketAddr,
}

/// Both workloads, real and modelled.
pub struct World {
    nets: [Arc<Network>; 2],
    /// Per workload: every address bound now (sockets, listeners, connections' local ports).
    bound: [Vec<SocketAddr>; 2],
    sockets: Vec<Socket>,
    ends: Vec<Option<End>>,
    dirs: Vec<Direction>,
    next_byte: u8,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

fn unspecified(ip: IpAddr) -> IpAddr {
    if ip.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) }
}

impl World {
    /// Two empty workloads.
    pub fn new() -> Self {
        let limits = Limits { stream_capacity: CAPACITY, ..Limits::default() };
        World {
            nets: [Network::new("a", limits), Network::new("b", limits)],
            bound: [Vec::new(), Vec::new()],
            sockets: Vec::new(),
            ends: Vec::new(),
            dirs: Vec::new(),
            next_byte: 0,
        }
    }

    /// Applies the operations encoded in `data`, at most `max_ops` of them.
    pub fn run(data: &[u8], max_ops: usize) {
        let mut world = World::new();
        let mut input = Input(data);
        for _ in 0..max_ops {
            if input.0.is_empty() {
                break;
            }
            world.step(&mut input);
        }
        world.close_everything();
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.pick(8) {
            0 => self.bind(input),
            1 => self.listen(input),
            2 | 3 => self.connect(input),
            4 => self.accept(input),
            5 => self.write(input),
            6 => self.read(input),
            _ => match input.pick(3) {
                0 => self.shutdown(input),
                1 => self.close_socket(input),
                _ => self.close_end(input),
            },
        }
    }

    /// Whether `addr` would conflict with an address bound now on workload `net`.
    fn conflicts(&self, net: usize, addr: SocketAddr) -> bool {
        let same_family = |a: &&SocketAddr| a.is_ipv4() == addr.is_ipv4() && a.port() == addr.port();
        if addr.ip().is_unspecified() {
            self.bound[net].iter().any(|a| same_family(&a))
        } else {
            self.bound[net].iter().filter(same_family).any(|a| a.ip() == addr.ip() || a.ip().is_unspecified())
        }
    }

    fn bind(&mut self, input: &mut Input<'_>) {
        let net = input.pick(2);
        let ip = IPS[input.pick(IPS.len())];
        let port = [0u16, 1, 2, 3][input.pick(4)];
        let asked = SocketAddr::new(ip, port);
        let result = self.nets[net].bind(asked);
        let virtual_ip = ip.is_loopback() || ip.is_unspecified();
        match result {
            Ok(bound) => {
                let got = bound.local_addr();
                assert!(virtual_ip, "bound {got} which is not on a virtual network");
                assert_eq!(got.ip(), ip);
                if port == 0 {
                    assert!(EPHEMERAL.contains(&got.port()), "ephemeral port {got} outside the range");
                } else {
                    assert_eq!(got.port(), port);
                }
                assert!(
                    !self.conflicts(net, got),
                    "bound {got} over an address in use: {:?}",
                    self.bound[net]
                );
                self.bound[net].push(got);
                self.sockets.push(Socket::Bound { net, port: bound });
            }
            Err(BindError::NotBindable { .. }) => assert!(!virtual_ip, "refused to bind {asked}"),
            Err(BindError::InUse { .. }) => {
                assert!(port != 0 && self.conflicts(net, asked), "{asked} reported in use but is free")
            }
            Err(e) => panic!("unexpected bind error for {asked}: {e}"),
        }
    }

    fn listen(&mut self, input: &mut Input<'_>) {
        let bound: Vec<usize> =
            (0..self.sockets.len()).filter(|i| matches!(self.sockets[*i], Socket::Bound { .. })).collect();
        if bound.is_empty() {
            return;
        }
        let index = bound[input.pick(bound.len())];
        let backlog = 1 + input.pick(3);
        let Socket::Bound { net, port } = self.sockets.swap_remove(index) else { unreachable!() };
        let listener = port.listen(backlog);
        self.sockets.push(Socket::Listening { net, listener, backlog, pending: VecDeque::new() });
    }

    /// The listener a connect to `to` on `net` reaches: the exact address, else the wildcard.
    fn listener_for(&self, net: usize, to: SocketAddr) -> Option<usize> {
        let find = |addr: SocketAddr| {
            self.sockets.iter().position(|s| match s {
                Socket::Listening { net: n, listener, .. } => *n == net && listener.local_addr() == addr,
                Socket::Bound { .. } => false,
            })
        };
        find(to).or_else(|| find(SocketAddr::new(unspecified(to.ip()), to.port())))
    }

    fn connect(&mut self, input: &mut Input<'_>) {
        let net = input.pick(2);
        let ip = [IPS[0], IPS[1], IPS[2], IPS[5], IPS[6], IPS[7]][input.pick(6)];
        let port = [1u16, 2, 3][input.pick(3)];
        let asked = SocketAddr::new(ip, port);
        let to = SocketAddr::new(reached(ip), port);
        let target = self.listener_for(net, to);
        let result = self.nets[net].connect(asked);
        let connection = match result {
            Err(ConnectError::NotVirtual { .. }) => {
                return assert!(!to.ip().is_loopback(), "{asked} called not virtual");
            }
            Err(ConnectError::Refused { .. }) => {
                if let Some(index) = target {
                    let Socket::Listening { backlog, pending, .. } = &self.sockets[index] else {
                        unreachable!()
                    };
                    assert!(pending.len() >= *backlog, "refused {to} with room in the backlog");
                }
                return;
            }
            Err(e) => panic!("unexpected connect error for {to}: {e}"),
            Ok(connection) => connection,
        };
        let index =
            target.unwrap_or_else(|| panic!("connected to {to} on workload {net}, where nothing listens"));
        let local = connection.local_addr();
        assert!(local.ip().is_loopback() && local.is_ipv4() == to.is_ipv4(), "local address {local}");
        assert!(!self.conflicts(net, local), "connection got local address {local}, which is in use");
        self.bound[net].push(local);
        let (c2s, s2c) = (self.dirs.len(), self.dirs.len() + 1);
        self.dirs.push(Direction::default());
        self.dirs.push(Direction::default());
        let client = self.ends.len();
        self.ends.push(Some(End {
            net,
            real: Some(connection),
            out_dir: c2s,
            in_dir: s2c,
            holds: Some(local),
            peer_local: to,
        }));
        self.ends.push(Some(End {
            net,
            real: None,
            out_dir: s2c,
            in_dir: c2s,
            holds: None,
            peer_local: local,
        }));
        let Socket::Listening { backlog, pending, .. } = &mut self.sockets[index] else { unreachable!() };
        assert!(pending.len() < *backlog, "accepted into a full backlog");
        pending.push_back(client + 1);
    }

    fn accept(&mut self, input: &mut Input<'_>) {
        let listening: Vec<usize> = (0..self.sockets.len())
            .filter(|i| matches!(self.sockets[*i], Socket::Listening { .. }))
            .collect();
        if listening.is_empty() {
            return;
        }
        let index = listening[input.pick(listening.len())];
        let Socket::Listening { listener, pending, .. } = &mut self.sockets[index] else { unreachable!() };
        let real = listener.try_accept();
        match (pending.pop_front(), real) {
            (None, None) => {}
            (Some(end), Some(connection)) => {
                let modelled = self.ends[end].as_mut().expect("pending end");
                assert_eq!(connection.peer_addr(), modelled.peer_local, "accepted out of order");
                modelled.real = Some(connection);
            }
            (expected, got) => {
                panic!("accept: model has {expected:?}, network gave {:?}", got.map(|c| c.peer_addr()))
            }
        }
    }

    fn live_end(&self, input: &mut Input<'_>) -> Option<usize> {
        let live: Vec<usize> = (0..self.ends.len())
            .filter(|i| self.ends[*i].as_ref().is_some_and(|e| e.real.is_some()))
            .collect();
        (!live.is_empty()).then(|| live[input.pick(live.len())])
    }

    fn write(&mut self, input: &mut Input<'_>) {
        let Some(index) = self.live_end(input) else { return };
        let len = input.pick(150);
        let data: Vec<u8> = (0..len).map(|i| self.next_byte.wrapping_add(i as u8)).collect();
        let end = self.ends[index].as_ref().expect("live");
        let result = end.real.as_ref().expect("live").stream().writer().try_write(&data);
        let dir = &mut self.dirs[end.out_dir];
        if dir.reader_closed || dir.writer_closed {
            assert!(result.is_err(), "write into a closed direction succeeded");
            return;
        }
        let expected = len.min(CAPACITY - dir.buf.len());
        let written = result.expect("write into an open direction");
        assert_eq!(written, expected, "write of {len} with {} buffered", dir.buf.len());
        dir.buf.extend(&data[..written]);
        self.next_byte = self.next_byte.wrapping_add(written as u8);
    }

    fn read(&mut self, input: &mut Input<'_>) {
        let Some(index) = self.live_end(input) else { return };
        let max = input.pick(200);
        let end = self.ends[index].as_ref().expect("live");
        let mut out = vec![0u8; max];
        let outcome = end.real.as_ref().expect("live").stream().reader().try_read(&mut out);
        let dir = &mut self.dirs[end.in_dir];
        match outcome {
            ReadOutcome::Data(n) => {
                assert!(!dir.buf.is_empty(), "read {n} bytes from an empty direction");
                assert_eq!(n, max.min(dir.buf.len()));
                let expected: Vec<u8> = dir.buf.drain(..n).collect();
                assert_eq!(&out[..n], &expected[..], "bytes out of order or corrupted");
            }
            ReadOutcome::Empty => assert!(dir.buf.is_empty() && !dir.writer_closed, "empty with {dir:?}"),
            ReadOutcome::Eof => assert!(dir.buf.is_empty() && dir.writer_closed, "end of file with {dir:?}"),
        }
    }

    fn shutdown(&mut self, input: &mut Input<'_>) {
        let Some(index) = self.live_end(input) else { return };
        let end = self.ends[index].as_ref().expect("live");
        end.real.as_ref().expect("live").stream().writer().close();
        self.dirs[end.out_dir].writer_closed = true;
    }

    /// Models dropping an end: its reader and writer close, its local port is freed.
    fn drop_end(&mut self, index: usize) {
        let Some(end) = self.ends[index].take() else { return };
        self.dirs[end.in_dir].reader_closed = true;
        self.dirs[end.out_dir].writer_closed = true;
        if let Some(addr) = end.holds {
            let bound = &mut self.bound[end.net];
            let at = bound.iter().position(|a| *a == addr).expect("held address is bound");
            bound.swap_remove(at);
        }
        drop(end.real);
    }

    fn close_end(&mut self, input: &mut Input<'_>) {
        if let Some(index) = self.live_end(input) {
            self.drop_end(index);
        }
    }

    fn close_socket(&mut self, input: &mut Input<'_>) {
        if self.sockets.is_empty() {
            return;
        }
        let index = input.pick(self.sockets.len());
        let socket = self.sockets.swap_remove(index);
        let (net, addr, pending) = match socket {
            Socket::Bound { net, port } => (net, port.local_addr(), VecDeque::new()),
            Socket::Listening { net, listener, pending, .. } => (net, listener.local_addr(), pending),
        };
        // The real socket is dropped here (the match moved it); its pending connections with it.
        for end in pending {
            self.drop_end(end);
        }
        let at = self.bound[net].iter().position(|a| *a == addr).expect("socket address is bound");
        self.bound[net].swap_remove(at);
        // A freed address can be bound again at once.
        let again = self.nets[net].bind(addr);
        if self.conflicts(net, addr) {
            assert!(again.is_err(), "{addr} bound twice");
        } else {
            drop(again.unwrap_or_else(|e| panic!("freed {addr} cannot be bound again: {e}")));
        }
    }

    fn close_everything(&mut self) {
        self.sockets.clear();
        for index in 0..self.ends.len() {
            self.drop_end(index);
        }
        for net in &self.nets {
            let usage = net.usage();
            assert_eq!((usage.sockets, usage.connections), (0, 0), "leaked on workload {}", net.name());
        }
    }
}
