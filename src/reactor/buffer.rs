//! Output queues, and the pool that keeps idle connections from holding buffers.
//!
//! Every byte a handler writes goes into its connection's [`OutQueue`] and leaves in as few
//! `write(2)` calls as possible: a handler that answers 16 pipelined requests appends 16
//! responses, and the reactor writes them in one call after the handler returns.
//!
//! An idle connection holds no buffer at all. When a queue empties, its `Vec` goes back to
//! a reactor-wide [`BufPool`]; the next write on any connection takes one from there. Ten
//! thousand idle keep-alive connections then cost ten thousand empty `Vec`s (24 bytes
//! each), not ten thousand buffers, and a busy server still never calls `malloc` per
//! response.

/// Largest buffer worth keeping in the pool. A connection that once queued 10 MB should not
/// leave 10 MB parked in the pool forever; every ordinary response fits in 64 KiB
/// without growing.
pub(crate) const POOLED_CAPACITY_MAX: usize = 64 * 1024;

/// How many spare buffers the pool keeps. Only connections with output *in flight* hold a
/// buffer, and in one tick that is at most a few hundred; beyond this the spares are freed.
pub(crate) const POOL_SIZE_MAX: usize = 256;

/// A connection's pending output: `buf[start..]` has not reached the kernel yet.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    buf: Vec<u8>,
    start: usize,
}

impl OutQueue {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's allocation (0 when it holds none).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The unwritten bytes, for `write(2)`.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The buffer to append to (taken from `pool` if this queue holds none). Only appends
    /// are allowed: bytes already in it are on their way to the peer.
    pub(crate) fn append_buf(&mut self, pool: &mut BufPool) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        &mut self.buf
    }

    /// `n` bytes reached the kernel. When the queue empties, its buffer goes back to `pool`.
    pub(crate) fn consume(&mut self, n: usize, pool: &mut BufPool) {
        debug_assert!(n <= self.len());
        self.start += n;
        if self.start == self.buf.len() {
            self.start = 0;
            pool.give(std::mem::take(&mut self.buf));
        } else if self.start >= POOLED_CAPACITY_MAX && self.start * 2 >= self.buf.len() {
            // A slow reader with a long queue: drop the written front so the buffer does
            // not grow forever while the peer keeps up only partly. Copying the (smaller)
            // unwritten half costs less than the memory it frees.
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self, pool: &mut BufPool) {
        self.start = 0;
        pool.give(std::mem::take(&mut self.buf));
    }
}

/// Spare output buffers shared by every connection of one reactor.
#[derive(Debug, Default)]
pub(crate) struct BufPool {
    free: Vec<Vec<u8>>,
}

impl BufPool {
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    pub(crate) fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == 0
            || buf.capacity() > POOLED_CAPACITY_MAX
            || self.free.len() >= POOL_SIZE_MAX
        {
            return;
        }
        buf.clear();
        self.free.push(buf);
    }

    /// Spare buffers held (for tests).
    #[cfg(test)]
    pub(crate) fn spares(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_leave_the_rest_in_order() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        q.append_buf(&mut pool).extend_from_slice(b"hello ");
        q.append_buf(&mut pool).extend_from_slice(b"world");
        assert_eq!(q.pending(), b"hello world");
        q.consume(3, &mut pool);
        assert_eq!(q.pending(), b"lo world");
        q.append_buf(&mut pool).extend_from_slice(b"!");
        assert_eq!(q.pending(), b"lo world!");
        assert_eq!(q.len(), 9);
    }

    #[test]
    fn an_emptied_queue_holds_no_buffer_and_reuses_the_pool() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        q.append_buf(&mut pool).extend_from_slice(&[0; 100]);
        let cap = q.buf.capacity();
        q.consume(100, &mut pool);
        assert!(q.is_empty());
        assert_eq!(q.buf.capacity(), 0, "idle connections hold no buffer");
        assert_eq!(pool.spares(), 1);
        let mut other = OutQueue::default();
        other.append_buf(&mut pool).push(1);
        assert_eq!(pool.spares(), 0);
        assert_eq!(
            other.buf.capacity(),
            cap,
            "the spare was reused, not reallocated"
        );
    }

    #[test]
    fn huge_buffers_are_not_pooled_and_the_pool_is_bounded() {
        let mut pool = BufPool::default();
        pool.give(Vec::with_capacity(POOLED_CAPACITY_MAX + 1));
        assert_eq!(pool.spares(), 0);
        for _ in 0..POOL_SIZE_MAX + 10 {
            pool.give(Vec::with_capacity(16));
        }
        assert_eq!(pool.spares(), POOL_SIZE_MAX);
    }

    #[test]
    fn a_long_queue_drops_its_written_front() {
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let data: Vec<u8> = (0..POOLED_CAPACITY_MAX * 3).map(|i| i as u8).collect();
        q.append_buf(&mut pool).extend_from_slice(&data);
        q.consume(POOLED_CAPACITY_MAX * 2, &mut pool);
        assert_eq!(q.start, 0, "compacted");
        assert_eq!(q.pending(), &data[POOLED_CAPACITY_MAX * 2..]);
    }
}
