//! The value buffers the FASTA reader hands to Arrow.
//!
//! **Checked ASCII.** A buffer whose bytes the reader has checked to be ASCII is registered by
//! its address, so that `length(sequence)` can count bytes without reading them all again
//! (DataFusion's `length` checks every byte for ASCII first: a fifth of a
//! `sum(length(sequence))` scan). A buffer is registered when it is built and leaves the
//! registry when its last reference is dropped, before its memory is freed or reused, so an
//! address in the registry always belongs to a live buffer whose bytes were checked. Arrow
//! buffers are immutable: any array whose values lie inside a registered buffer (a slice of a
//! batch, say) holds only ASCII bytes; arrays that other code builds (filters, `CASE`,
//! concatenations) have buffers of their own and are not in the registry.
//!
//! **Recycled.** When Arrow drops such a buffer, its vector goes back to a small pool that the
//! reader builds its next batches in: fresh memory for every batch cost a page fault per 4 KiB
//! (5.5 % of a one-partition `sum(length(sequence))` scan's samples, 9.7 % with two). The pool keeps at most [`POOL_BYTES`] of capacity.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use datafusion::arrow::buffer::Buffer;

/// Start address → end address of each registered buffer.
static REGISTRY: LazyLock<Mutex<BTreeMap<usize, usize>>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, BTreeMap<usize, usize>> {
    // the map is consistent after every operation: a panic elsewhere cannot leave it torn
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Most bytes of capacity the pool of vectors keeps.
const POOL_BYTES: usize = 32 << 20;

/// Vectors to build values in, given back by dropped buffers.
#[derive(Default)]
struct Pool(Vec<Vec<u8>>);

impl Pool {
    /// An empty vector with room for at least `capacity` bytes, a pooled one if there is one.
    fn take(&mut self, capacity: usize) -> Vec<u8> {
        let mut bytes = self.0.pop().unwrap_or_default();
        bytes.reserve(capacity);
        bytes
    }

    /// Keeps `bytes` for reuse unless the pool would then hold more than [`POOL_BYTES`].
    fn give(&mut self, mut bytes: Vec<u8>) {
        let pooled: usize = self.0.iter().map(Vec::capacity).sum();
        if pooled + bytes.capacity() <= POOL_BYTES {
            bytes.clear();
            self.0.push(bytes);
        }
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool(Vec::new()));

fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An empty vector with room for at least `capacity` bytes, from the pool when it has one.
pub(super) fn vector(capacity: usize) -> Vec<u8> {
    pool().take(capacity)
}

/// The bytes of a registered buffer; dropping it takes the buffer out of the registry and gives
/// the vector back to the pool.
struct AsciiBytes(Vec<u8>);

impl Drop for AsciiBytes {
    fn drop(&mut self) {
        registry().remove(&(self.0.as_ptr() as usize));
        pool().give(std::mem::take(&mut self.0));
    }
}

/// `bytes` as an Arrow buffer known to hold only ASCII, its vector recycled once the buffer is
/// dropped.
///
/// The caller must have checked that every byte is ASCII: [`is_ascii_buffer`] vouches for it.
pub(super) fn ascii_buffer(bytes: Vec<u8>) -> Buffer {
    #[cfg(test)]
    assert!(bytes.is_ascii(), "only checked ASCII bytes are registered");
    let Some(ptr) = NonNull::new(bytes.as_ptr().cast_mut()).filter(|_| !bytes.is_empty()) else {
        return Buffer::from_vec(bytes); // nothing to vouch for
    };
    let (start, len) = (ptr.as_ptr() as usize, bytes.len());
    let owner = Arc::new(AsciiBytes(bytes));
    registry().insert(start, start + len);
    // SAFETY: `ptr` points to the `len` initialised bytes of the vector `owner` holds; moving the
    // vector into `owner` did not move its heap allocation, and nothing mutates or frees it
    // while `owner` (kept alive by the buffer) lives.
    unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
}

/// Whether `bytes` lie inside a buffer made by [`ascii_buffer`], and so are all ASCII. `false`
/// says nothing.
pub(crate) fn is_ascii_buffer(bytes: &[u8]) -> bool {
    let start = bytes.as_ptr() as usize;
    !bytes.is_empty() && registered(start, start + bytes.len())
}

/// Whether the addresses `start..end` lie inside one registered buffer.
fn registered(start: usize, end: usize) -> bool {
    registry()
        .range(..=start)
        .next_back()
        .is_some_and(|(_, &known_end)| end <= known_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_buffers_and_their_slices_are_known() {
        let buffer = ascii_buffer(b"MKVLAAGIW".to_vec());
        assert!(is_ascii_buffer(buffer.as_slice()));
        assert!(is_ascii_buffer(&buffer.as_slice()[2..5]));
        let sliced = buffer.slice(3);
        drop(buffer);
        // the slice keeps the allocation, and its registration, alive (once it is dropped too,
        // the vector may be pooled and registered again by a reader in another test: the
        // registry is not checked after that)
        assert!(is_ascii_buffer(sliced.as_slice()));
    }

    #[test]
    fn the_pool_hands_back_given_vectors_cleared_and_keeps_a_bounded_amount() {
        let mut pool = Pool::default();
        let given = b"MKV".repeat(100);
        let address = given.as_ptr();
        pool.give(given);
        let taken = pool.take(10);
        assert_eq!((taken.as_ptr(), taken.len()), (address, 0));
        assert!(taken.capacity() >= 300);
        // a vector too large for what is left is dropped, not kept
        pool.give(Vec::with_capacity(POOL_BYTES - 100));
        pool.give(Vec::with_capacity(200));
        assert_eq!(pool.0.len(), 1);
        assert!(pool.take(0).capacity() >= POOL_BYTES - 100);
        assert!(pool.take(64).capacity() >= 64, "an empty pool makes a new vector");
    }

    #[test]
    fn other_bytes_are_not_vouched_for() {
        let buffer = ascii_buffer(b"ACDE".to_vec());
        let other = Buffer::from_vec(b"ACDE".to_vec());
        assert!(!is_ascii_buffer(other.as_slice()));
        assert!(!is_ascii_buffer(b"ACDE"));
        assert!(!is_ascii_buffer(&[]));
        // a range must lie inside one buffer: not past its end, not before its start
        let start = buffer.as_ptr() as usize;
        assert!(registered(start, start + 4));
        assert!(!registered(start, start + 5));
        assert!(!registered(start - 1, start + 3));
        assert!(ascii_buffer(Vec::new()).is_empty());
    }
}
