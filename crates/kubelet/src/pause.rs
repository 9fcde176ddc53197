//! The pod sandbox image, built from rkube's own pause program (`pause/pause.rs`, compiled by
//! build.rs and embedded here) and imported into the runtime at start, so nothing is pulled.

use crate::oci;

/// The pause executable.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// The sandbox image's reference.
pub fn image_name() -> String {
    format!("localhost/rkube/pause:{}", env!("CARGO_PKG_VERSION"))
}

/// The sandbox image as an OCI-layout archive.
pub fn image_archive() -> std::io::Result<Vec<u8>> {
    let image = oci::build(
        &[oci::Entry::File {
            path: "pause".into(),
            mode: 0o755,
            data: PAUSE_BINARY.to_vec(),
        }],
        &oci::ImageConfig {
            entrypoint: vec!["/pause".into()],
            ..Default::default()
        },
    )?;
    oci::archive(&image, &image_name())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pause_binary_is_a_static_executable() {
        let bin = super::PAUSE_BINARY;
        assert_eq!(&bin[..4], b"\x7fELF");
        // no program interpreter (PT_INTERP): it runs in an image that has no libc
        let u16_at = |o: usize| u16::from_le_bytes([bin[o], bin[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(bin[0x20..0x28].try_into().unwrap()) as usize;
        let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
        assert!(phnum > 0);
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            let p_type = u32::from_le_bytes(bin[at..at + 4].try_into().unwrap());
            assert_ne!(p_type, 3, "the pause program has a PT_INTERP header");
        }
    }
}
