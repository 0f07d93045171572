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
        // Hand-rolled: six `{:02x}` cost more than the hash on the render path.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            text[i * 3] = HEX[usize::from(byte >> 4)];
            text[i * 3 + 1] = HEX[usize::from(byte & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&text).expect("hex digits and colons are ASCII"))
    }
}

/// `02:` + the first 5 bytes of SHA-256(`namespace/wukong/network`): locally administered,
/// unicast, and the same on every run.
pub fn derive(namespace: &str, wukong: &str, network: &str) -> Mac {
    let digest = Sha256::new()
        .chain_update(namespace)
        .chain_update("/")
        .chain_update(wukong)
        .chain_update("/")
        .chain_update(network)
        .finalize();
    let mut bytes = [0u8; 6];
    bytes[0] = 0x02;
    bytes[1..].copy_from_slice(&digest[..5]);
    Mac(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_six_lower_case_hex_bytes() {
        assert_eq!(Mac([0x02, 0xab, 0x00, 0x0f, 0xf0, 0xff]).to_string(), "02:ab:00:0f:f0:ff");
    }

    #[test]
    fn hashes_namespace_wukong_and_network_joined_by_slashes() {
        let expected = Sha256::digest(b"ns/vm/mgmt");
        assert_eq!(derive("ns", "vm", "mgmt").0[1..], expected[..5]);
        assert_eq!(derive("ns", "vm", "mgmt").0[0], 0x02);
    }
}
