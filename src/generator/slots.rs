//! Sets of twin slots that cost memory only for the slots that have been touched, so a pool of a
//! billion slots costs nothing until its twins exist.
//!
//! - [`SlotSet`]: the slots of `0..pool` whose position in the 50-slot model pattern is in given
//!   ranges (the slots of a model, the slots that can be a relationship's source), in ascending
//!   order, computed rather than stored.
//! - [`DeadSlots`]: the slots whose twin does not exist, with exactly the order an
//!   `IndexSet` filled with `0..pool` would have under the same `swap_remove` and `insert` calls
//!   (so picking "the i-th dead slot" gives the same twins, and the same events, as before).
//!   Only positions that differ from the identity are stored.

use std::collections::HashMap;
use std::ops::Range;

use foldhash::fast::RandomState as FastHash;

use super::models::SLOT_PATTERN;

/// The slots of `0..pool` whose residue modulo [`SLOT_PATTERN`] falls in `residues`.
#[derive(Clone, Debug, Default)]
pub(super) struct SlotSet {
    /// Disjoint, ascending residue ranges.
    residues: Vec<Range<u32>>,
    /// Residues per period (the sum of the ranges' lengths).
    width: u32,
    len: u32,
}

impl SlotSet {
    /// The slots of `0..pool` with a residue in one of `residues` (disjoint, in any order).
    pub(super) fn new(pool: u32, mut residues: Vec<Range<u32>>) -> Self {
        residues.retain(|range| !range.is_empty());
        residues.sort_by_key(|range| range.start);
        let width = residues.iter().map(|range| range.end - range.start).sum();
        let periods = pool / SLOT_PATTERN;
        let rest = pool % SLOT_PATTERN;
        let partial: u32 = residues
            .iter()
            .map(|range| rest.clamp(range.start, range.end) - range.start)
            .sum();
        SlotSet {
            residues,
            width,
            len: periods * width + partial,
        }
    }

    /// How many slots the set holds.
    pub(super) fn len(&self) -> u32 {
        self.len
    }

    /// The `index`-th slot in ascending order (`index < len`).
    pub(super) fn get(&self, index: u32) -> u32 {
        let period = index / self.width.max(1);
        let mut offset = index % self.width.max(1);
        for range in &self.residues {
            let width = range.end - range.start;
            if offset < width {
                return period * SLOT_PATTERN + range.start + offset;
            }
            offset -= width;
        }
        period * SLOT_PATTERN
    }
}

/// The dead slots of a pool of `pool` slots, all dead at first, in `IndexSet` order.
#[derive(Debug, Default)]
pub(super) struct DeadSlots {
    len: u32,
    /// Position → slot, where the slot at a position is not the position itself.
    slot_at: HashMap<u32, u32, FastHash>,
    /// Slot → position, for dead slots that are not at their own position.
    position_of: HashMap<u32, u32, FastHash>,
}

impl DeadSlots {
    /// Slots `0..pool`, each at its own position.
    pub(super) fn new(pool: u32) -> Self {
        DeadSlots {
            len: pool,
            ..DeadSlots::default()
        }
    }

    pub(super) fn len(&self) -> u32 {
        self.len
    }

    /// The slot at `position` (`position < len`).
    pub(super) fn get(&self, position: u32) -> u32 {
        self.slot_at.get(&position).copied().unwrap_or(position)
    }

    fn place(&mut self, position: u32, slot: u32) {
        if position == slot {
            self.slot_at.remove(&position);
            self.position_of.remove(&slot);
        } else {
            self.slot_at.insert(position, slot);
            self.position_of.insert(slot, position);
        }
    }

    /// Removes dead `slot` as `IndexSet::swap_remove` does: the last slot takes its position.
    pub(super) fn swap_remove(&mut self, slot: u32) {
        let Some(last) = self.len.checked_sub(1) else {
            return;
        };
        let position = self.position_of.get(&slot).copied().unwrap_or(slot);
        let moved = self.get(last);
        self.slot_at.remove(&last);
        self.position_of.remove(&slot);
        if moved != slot {
            self.place(position, moved);
        }
        self.len = last;
    }

    /// Adds `slot` (not dead yet) at the end, as `IndexSet::insert` does.
    pub(super) fn push(&mut self, slot: u32) {
        self.place(self.len, slot);
        self.len += 1;
    }

    /// Entries stored: grows with the slots touched, not with the pool.
    #[cfg(test)]
    pub(super) fn stored(&self) -> usize {
        self.slot_at.len() + self.position_of.len()
    }
}

#[cfg(test)]
mod tests {
    use indexmap::IndexSet;
    use proptest::prelude::*;

    use super::*;
    use crate::generator::models::ModelKind;

    #[test]
    fn slot_sets_list_the_slots_of_their_residues_in_order() {
        for pool in [1, 2, 5, 6, 20, 21, 49, 50, 51, 137, 1000] {
            for kind in ModelKind::ALL {
                let set = SlotSet::new(pool, vec![kind.slot_residues()]);
                let listed: Vec<u32> = (0..set.len()).map(|i| set.get(i)).collect();
                let expected: Vec<u32> = (0..pool)
                    .filter(|s| ModelKind::for_slot(*s) == kind)
                    .collect();
                assert_eq!(listed, expected, "{kind:?} in {pool}");
            }
            let set = SlotSet::new(pool, vec![5..20, 0..1]);
            let listed: Vec<u32> = (0..set.len()).map(|i| set.get(i)).collect();
            let expected: Vec<u32> = (0..pool).filter(|s| matches!(s % 50, 0 | 5..20)).collect();
            assert_eq!(listed, expected, "two ranges in {pool}");
        }
        let huge = SlotSet::new(u32::MAX, vec![ModelKind::Sensor.slot_residues()]);
        // The pool's last slot, u32::MAX - 1, is a sensor (residue 44).
        assert_eq!(huge.get(huge.len() - 1), u32::MAX - 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Remove(usize),
        Restore(usize),
    }

    proptest! {
        /// Any sequence of removals (of a dead slot) and restorations (of a removed one) leaves
        /// `DeadSlots` in the order an `IndexSet` of `0..pool` would have.
        #[test]
        fn dead_slots_keep_index_set_order(
            pool in 1u32..200,
            ops in prop::collection::vec(
                prop_oneof![any::<usize>().prop_map(Op::Remove), any::<usize>().prop_map(Op::Restore)],
                0..400,
            ),
        ) {
            let mut model: IndexSet<u32> = (0..pool).collect();
            let mut removed: IndexSet<u32> = IndexSet::new();
            let mut dead = DeadSlots::new(pool);
            for (done, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Remove(pick) if !model.is_empty() => {
                        let slot = model[pick % model.len()];
                        model.swap_remove(&slot);
                        dead.swap_remove(slot);
                        removed.insert(slot);
                    }
                    Op::Restore(pick) if !removed.is_empty() => {
                        let slot = removed[pick % removed.len()];
                        removed.swap_remove(&slot);
                        model.insert(slot);
                        dead.push(slot);
                    }
                    _ => {}
                }
                prop_assert_eq!(dead.len() as usize, model.len());
                for (position, slot) in model.iter().enumerate() {
                    prop_assert_eq!(dead.get(position as u32), *slot);
                }
                // At most two entries per call: what is stored grows with the calls, not the pool.
                prop_assert!(dead.stored() <= 2 * (done + 1));
            }
        }
    }

    #[test]
    fn a_billion_dead_slots_cost_nothing_until_touched() {
        let mut dead = DeadSlots::new(1_000_000_000);
        assert_eq!(dead.stored(), 0);
        for slot in [5, 999_999_999, 123_456_789] {
            dead.swap_remove(slot);
        }
        assert_eq!(dead.len(), 999_999_997);
        assert!(dead.stored() <= 6, "{}", dead.stored());
        assert_eq!(dead.get(5), 999_999_998);
    }
}
