//! Keyed random streams: the one place where a random generator is derived from a key.
//!
//! Every random quantity of the simulator — a sample's demand, its initial pipelines, a per-store
//! or per-sample parameter draw — comes from a PCG-64 stream whose seed is a hash of a key sequence
//! (`split seed, purpose, sample`). [`name_key`] turns a purpose name into a key, [`keyed_rng`]
//! turns a key sequence into a generator. Both [`crate::config`] (per-store parameter draws) and
//! [`crate::scenario`] (per-sample draws) take their streams from here.

use rand::SeedableRng;
use rand_pcg::Pcg64;

/// A 64-bit key for a name (FNV-1a), used as the "purpose" part of a stream key.
pub const fn name_key(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The SplitMix64 finaliser: a bijective 64-bit mixer.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A PCG-64 generator whose 256-bit seed (state and stream) is derived from a key sequence by
/// SplitMix64 hashing. Different keys give unrelated streams; the order of keys matters.
pub fn keyed_rng(keys: &[u64]) -> Pcg64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = GOLDEN;
    for &k in keys {
        h = mix64(h ^ mix64(k.wrapping_add(GOLDEN)));
    }
    let mut seed = [0u8; 32];
    let mut s = h;
    for chunk in seed.chunks_exact_mut(8) {
        s = s.wrapping_add(GOLDEN);
        chunk.copy_from_slice(&mix64(s).to_le_bytes());
    }
    Pcg64::from_seed(seed)
}

/// The RNG of per-store parameter draws: a stream keyed by the parameters' seed and the field name.
pub(crate) fn parameter_rng(seed: u64, field: &str) -> Pcg64 {
    keyed_rng(&[seed, name_key(field)])
}
