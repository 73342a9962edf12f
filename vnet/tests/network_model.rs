//! The virtual network against its reference model (see `model/network.rs`): random
//! operation sequences across two workloads. The same model drives the `vnet_ops` fuzz target.

#[path = "model/network.rs"]
mod network;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn two_workloads_agree_with_the_model(data in prop::collection::vec(any::<u8>(), 0..1200)) {
        network::World::run(&data, 400);
    }
}
