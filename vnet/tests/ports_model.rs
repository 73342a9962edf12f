//! The port table against a simple model: a set of used ports (proptest).

use std::collections::HashMap;

use proptest::prelude::*;
use switchyard_vnet::ports::{PortTable, PortsExhausted};

#[derive(Debug, Clone)]
enum Op {
    Acquire(u16),
    Allocate,
    Release(u16),
}

fn op() -> impl Strategy<Value = Op> {
    // A small range so that exhaustion, reuse and explicit binds inside the range all happen.
    prop_oneof![(95u16..=110).prop_map(Op::Acquire), Just(Op::Allocate), (95u16..=110).prop_map(Op::Release)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_table_agrees_with_a_model_of_used_ports(ops in prop::collection::vec(op(), 0..200)) {
        let range = 100u16..=105;
        let mut table = PortTable::new(range.clone());
        let mut model: HashMap<u16, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Acquire(p) => {
                    table.acquire(p);
                    *model.entry(p).or_insert(0) += 1;
                }
                Op::Release(p) => {
                    table.release(p);
                    if let Some(n) = model.get_mut(&p) {
                        *n -= 1;
                        if *n == 0 {
                            model.remove(&p);
                        }
                    }
                }
                Op::Allocate => {
                    let free_in_range = range.clone().any(|p| !model.contains_key(&p));
                    match table.allocate() {
                        Ok(p) => {
                            prop_assert!(range.contains(&p), "{p} outside the range");
                            prop_assert!(!model.contains_key(&p), "{p} handed out while in use");
                            model.insert(p, 1);
                        }
                        Err(PortsExhausted) => prop_assert!(!free_in_range, "exhausted with a free port"),
                    }
                }
            }
            for p in 95u16..=110 {
                prop_assert_eq!(table.is_used(p), model.contains_key(&p));
            }
        }
    }
}
