//! Arbitrary sequences of bind / listen / connect / accept / write / read / shutdown / close across
//! two workloads' virtual networks, checked step by step against the reference model shared with
//! `vnet/tests/network_model.rs`: nothing crosses workloads, one listener per port, freed ports
//! bind again, bytes arrive in order and complete, nothing panics, nothing leaks.

#![no_main]

#[path = "../../vnet/tests/model/network.rs"]
mod network;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    network::World::run(data, 2000);
});
