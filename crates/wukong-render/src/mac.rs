//! Stable MAC addresses for secondary interfaces.
//!
//! Without a fixed MAC, KubeVirt's bridge binding hands the guest the launcher pod's random
//! interface MAC, new on every restart; cloud-init matching and DHCP reservations then break.

use std::fmt;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// `02:` + the first 5 bytes of SHA-256(`namespace/wukong/network`): locally administered,
/// unicast, and the same on every run.
pub fn derive(namespace: &str, wukong: &str, network: &str) -> Mac {
    let digest = Sha256::digest(format!("{namespace}/{wukong}/{network}").as_bytes());
    let mut bytes = [0u8; 6];
    bytes[0] = 0x02;
    bytes[1..].copy_from_slice(&digest[..5]);
    Mac(bytes)
}
