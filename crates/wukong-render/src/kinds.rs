//! Which optional kinds the API server serves, and when a kind that went missing counts as gone.
//!
//! The NAD kind can vanish for a moment: Multus being reinstalled, a GitOps tool applying CRDs in
//! another order, one failed discovery request. Planning the pod-network fallback on such a
//! blip would strip the secondary networks from every VM it touches. So a kind that was served
//! counts as gone only after discovery found it missing [`ABSENT_CHECKS`] times in a row over at
//! least the tracker's `absent_for`; a kind that appears counts at once; a discovery that fails
//! (not a 404) says nothing either way.

/// Which optional kinds the API server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds {
    /// `network-attachment-definitions.k8s.cni.cncf.io` (Multus).
    pub nad: bool,
    /// `virtualmachines.kubevirt.io`.
    pub vm: bool,
    /// `virtualmachineinstances.kubevirt.io`.
    pub vmi: bool,
    /// `datavolumes.cdi.kubevirt.io` (CDI): the phases of the disks' DataVolumes.
    pub data_volume: bool,
    /// `kubevirts.kubevirt.io`: the KubeVirt CR, what the cluster's KubeVirt can do.
    pub kubevirt_config: bool,
}

impl Kinds {
    fn get(&self, i: usize) -> bool {
        [self.nad, self.vm, self.vmi, self.data_volume, self.kubevirt_config][i]
    }

    fn set(&mut self, i: usize, value: bool) {
        let field = match i {
            0 => &mut self.nad,
            1 => &mut self.vm,
            2 => &mut self.vmi,
            3 => &mut self.data_volume,
            _ => &mut self.kubevirt_config,
        };
        *field = value;
    }
}

const KINDS: usize = 5;

/// Consecutive checks that must find a served kind missing before it counts as gone.
pub const ABSENT_CHECKS: u32 = 3;

/// The kinds the controller acts on, from a series of discoveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindsTracker {
    current: Kinds,
    absent_for_ms: u64,
    /// Per kind: since when (ms) and how many checks in a row it was found missing while current.
    missing: [Option<(u64, u32)>; KINDS],
}

impl KindsTracker {
    /// Starts from a first discovery (what is missing at start was never acted on as present),
    /// with the least time a served kind must stay missing before it counts as gone.
    pub fn new(first: Kinds, absent_for_ms: u64) -> Self {
        Self { current: first, absent_for_ms, missing: [None; KINDS] }
    }

    pub fn current(&self) -> Kinds {
        self.current
    }

    /// Takes one discovery at `now_ms` (`None`: it failed) and returns the kinds to act on.
    pub fn observe(&mut self, seen: Option<Kinds>, now_ms: u64) -> Kinds {
        let Some(seen) = seen else { return self.current };
        for i in 0..KINDS {
            if seen.get(i) {
                self.current.set(i, true);
                self.missing[i] = None;
            } else if self.current.get(i) {
                let (since, checks) = self.missing[i].map_or((now_ms, 1), |(since, n)| (since, n + 1));
                if checks >= ABSENT_CHECKS && now_ms.saturating_sub(since) >= self.absent_for_ms {
                    self.current.set(i, false);
                    self.missing[i] = None;
                } else {
                    self.missing[i] = Some((since, checks));
                }
            }
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Kinds = Kinds { nad: true, vm: true, vmi: true, data_volume: true, kubevirt_config: true };

    fn without_nad() -> Kinds {
        Kinds { nad: false, ..ALL }
    }

    #[test]
    fn one_missed_discovery_changes_nothing() {
        let mut t = KindsTracker::new(ALL, 60_000);
        assert_eq!(t.observe(Some(without_nad()), 1_000), ALL);
        assert_eq!(t.observe(Some(ALL), 2_000), ALL);
        // the count starts again after the kind came back
        assert_eq!(t.observe(Some(without_nad()), 3_000), ALL);
        assert_eq!(t.observe(Some(without_nad()), 4_000), ALL);
        assert_eq!(t.observe(Some(ALL), 5_000), ALL);
    }

    #[test]
    fn a_kind_is_gone_after_enough_checks_over_enough_time() {
        let mut t = KindsTracker::new(ALL, 60_000);
        // three misses within a few seconds are not enough time
        for now in [0, 1_000, 2_000, 3_000] {
            assert_eq!(t.observe(Some(without_nad()), now), ALL);
        }
        assert_eq!(t.observe(Some(without_nad()), 59_999), ALL);
        assert_eq!(t.observe(Some(without_nad()), 60_000), without_nad());
        assert_eq!(t.current(), without_nad());
    }

    #[test]
    fn enough_time_but_too_few_checks_is_not_enough() {
        let mut t = KindsTracker::new(ALL, 60_000);
        assert_eq!(t.observe(Some(without_nad()), 0), ALL);
        assert_eq!(t.observe(Some(without_nad()), 120_000), ALL);
        assert_eq!(t.observe(Some(without_nad()), 130_000), without_nad());
    }

    #[test]
    fn failed_discoveries_say_nothing_and_appearing_kinds_count_at_once() {
        let mut t = KindsTracker::new(without_nad(), 60_000);
        assert_eq!(t.observe(None, 0), without_nad());
        assert_eq!(t.observe(Some(ALL), 1), ALL);
        let mut t = KindsTracker::new(ALL, 0);
        assert_eq!(t.observe(Some(without_nad()), 0), ALL);
        assert_eq!(t.observe(None, 1), ALL, "a failed discovery neither counts nor resets");
        assert_eq!(t.observe(Some(without_nad()), 2), ALL);
        assert_eq!(t.observe(Some(without_nad()), 3), without_nad());
    }
}
