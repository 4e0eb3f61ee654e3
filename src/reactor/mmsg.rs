//! Datagrams in batches: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! A UDP echo does almost nothing but system calls: `recvfrom`, `sendto`, again. When 32
//! datagrams are in flight, several are usually waiting by the time the loop looks, so one
//! `recvmmsg` takes all of them (up to [`BATCH`]) and one `sendmmsg` sends every reply the
//! handlers queued during the tick. The kernel still does per-datagram work; what the batch
//! saves is the entry and exit of one system call per datagram, which at a few hundred
//! thousand datagrams a second is what separates a reactor from the peer it is compared
//! with (`cargo bench --bench udp_echo`).
//!
//! Handlers see none of this: `datagram` is still called once per datagram, and
//! `Context::send_to` queues into a [`SendQueue`] that the reactor flushes after the tick's
//! callbacks.

use socket2::SockAddr;
use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Datagrams per system call. 16 covers the 32-in-flight benchmark in a couple of calls;
/// more slots only add buffer and header set-up for calls that rarely fill them.
pub(crate) const BATCH: usize = 16;

/// Bytes per receive slot: the largest UDP payload over IPv4 is 65,507 bytes, and a slot
/// must hold it whole (a datagram larger than its buffer is truncated by the kernel).
/// 16 slots are 1 MiB of address space, but the pages are only touched as datagrams fill
/// them: 64-byte datagrams cost one page per slot.
const SLOT: usize = 64 * 1024;

/// Receive buffers and the addresses `recvmmsg` fills in.
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    addrs: [libc::sockaddr_storage; BATCH],
    addr_lens: [libc::socklen_t; BATCH],
    lens: [usize; BATCH],
    count: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            buf: vec![0; BATCH * SLOT].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (empty) value.
            addrs: unsafe { std::mem::zeroed() },
            addr_lens: [0; BATCH],
            lens: [0; BATCH],
            count: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams from the non-blocking socket `fd`. Returns how
    /// many; `WouldBlock` when none is waiting.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: mmsghdr is plain data (pointers and integers); all zeroes is a valid value.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let slots = self.buf.chunks_exact_mut(SLOT);
        for (((msg, iov), addr), slot) in msgs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(self.addrs.iter_mut())
            .zip(slots)
        {
            let iov = iov.write(libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            });
            msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            msg.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every msg_hdr points at memory that lives until this call returns and
        // that nothing else borrows: slot i of `self.buf` (SLOT bytes, as iov_len says), the
        // iovec for it in `iovs`, and `self.addrs[i]` (namelen bytes), all derived from
        // exclusive borrows. A null timeout is allowed; the socket is non-blocking, so the
        // call returns at once with what is queued.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                0,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, msg) in msgs.iter().take(n).enumerate() {
            self.lens[i] = msg.msg_len as usize;
            self.addr_lens[i] = msg.msg_hdr.msg_namelen;
        }
        self.count = n;
        Ok(n)
    }

    /// Datagram `i` of the last [`recv`](RecvBatch::recv) and who sent it (`None` for an
    /// address family netloop does not speak).
    pub(crate) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        debug_assert!(i < self.count);
        // SAFETY: the kernel wrote a valid address of `addr_lens[i]` bytes (at most the
        // storage's size) into `addrs[i]`.
        let from = unsafe { SockAddr::new(self.addrs[i], self.addr_lens[i]) };
        (
            &self.buf[i * SLOT..i * SLOT + self.lens[i]],
            from.as_socket(),
        )
    }
}

/// `UDP_SEGMENT` from `<linux/udp.h>` (not in the libc crate for glibc targets): the
/// control message that makes one send carry many datagrams of one size (UDP GSO).
const UDP_SEGMENT: libc::c_int = 103;

/// Most datagrams one GSO send may carry: the kernel's `UDP_MAX_SEGMENTS`.
const GSO_MAX_SEGMENTS: usize = 64;

/// Most bytes one GSO send may carry: the payload must fit one IPv4 packet's 16-bit length
/// with headers (65,507), kept a little below it for IPv6 and option headroom.
const GSO_MAX_BYTES: usize = 65_000;

/// Datagrams queued by handlers, sent in batches when the reactor flushes the socket.
///
/// Two kinds of batching, both invisible to the receiver:
/// - `sendmmsg` sends up to [`BATCH`] messages in one system call;
/// - consecutive datagrams of one size to one address (an echo's replies, a QUIC sender's
///   packets) travel as *one* message with a `UDP_SEGMENT` control message (UDP GSO, Linux
///   4.18): the kernel walks its output path and the loopback device once for the group and
///   splits it back into the original datagrams just before the receiving socket. That is
///   where most of a datagram's kernel cost was. If the kernel refuses GSO, the queue turns
///   it off and sends datagram by datagram.
#[derive(Debug)]
pub(crate) struct SendQueue {
    /// Payloads back to back; `msgs` says where each ends.
    data: Vec<u8>,
    msgs: VecDeque<(SocketAddr, usize)>,
    /// Offset in `data` of the first unsent payload.
    head: usize,
    /// Group same-size datagrams with UDP GSO (until the kernel says it cannot).
    gso: bool,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue {
            data: Vec::new(),
            msgs: VecDeque::new(),
            head: 0,
            gso: true,
        }
    }
}

/// What a flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub sent: u64,
    pub bytes: u64,
    pub dropped: u64,
}

/// One message of a `sendmmsg` call: `count` queued datagrams, `bytes` in all, each
/// `segment` bytes long but the last (which may be shorter).
#[derive(Clone, Copy, Default)]
struct Group {
    count: usize,
    bytes: usize,
    segment: usize,
}

impl SendQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() - self.head
    }

    pub(crate) fn push(&mut self, bytes: &[u8], to: SocketAddr) {
        self.data.extend_from_slice(bytes);
        self.msgs.push_back((to, bytes.len()));
    }

    /// The group starting at queued datagram `first`.
    fn group_at(&self, first: usize) -> Group {
        let (to, len) = self.msgs[first];
        let mut g = Group {
            count: 1,
            bytes: len,
            segment: len,
        };
        if !self.gso || len == 0 {
            return g;
        }
        for &(next_to, next_len) in self.msgs.iter().skip(first + 1) {
            if next_to != to
                || next_len == 0
                || next_len > len
                || g.count == GSO_MAX_SEGMENTS
                || g.bytes + next_len > GSO_MAX_BYTES
            {
                break;
            }
            g.count += 1;
            g.bytes += next_len;
            if next_len < len {
                break; // only the last segment of a group may be shorter
            }
        }
        g
    }

    /// Sends what is queued, up to [`BATCH`] messages per call, until the queue is empty or
    /// the socket's buffer is full. A datagram the kernel refuses (an ICMP error from an
    /// earlier send, a size it will not take) is dropped and counted: UDP has nothing to
    /// close.
    pub(crate) fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut done = Flushed::default();
        while !self.msgs.is_empty() {
            let mut groups = [Group::default(); BATCH];
            let mut ngroups = 0;
            let mut next = 0;
            while ngroups < BATCH && next < self.msgs.len() {
                groups[ngroups] = self.group_at(next);
                next += groups[ngroups].count;
                ngroups += 1;
            }
            // SAFETY: plain C structs (integers, pointers, byte arrays): all zeroes is valid.
            let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
            let mut iovs: [MaybeUninit<libc::iovec>; BATCH] =
                [const { MaybeUninit::uninit() }; BATCH];
            // Room for one cmsghdr carrying a u16, 8-byte aligned (CMSG_SPACE(2) is 24).
            let mut controls = [[0u64; 4]; BATCH];
            // SAFETY: as above.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let mut offset = self.head;
            let mut first = 0;
            for i in 0..ngroups {
                let g = groups[i];
                let addr = SockAddr::from(self.msgs[first].0);
                let name_len = addr.len();
                names[i] = addr.as_storage();
                let payload = &self.data[offset..offset + g.bytes];
                let iov = iovs[i].write(libc::iovec {
                    iov_base: payload.as_ptr().cast_mut().cast(),
                    iov_len: g.bytes,
                });
                let hdr = &mut msgs[i].msg_hdr;
                hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = name_len;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                if g.count > 1 {
                    hdr.msg_control = controls[i].as_mut_ptr().cast();
                    // SAFETY: CMSG_SPACE only computes a size.
                    hdr.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
                    // SAFETY: msg_control points at 32 writable, 8-aligned bytes and
                    // msg_controllen (24) fits them, so CMSG_FIRSTHDR returns a pointer to
                    // the start of `controls[i]`, with room for the header and 2 data bytes.
                    unsafe {
                        let cmsg = libc::CMSG_FIRSTHDR(hdr);
                        (*cmsg).cmsg_level = libc::SOL_UDP;
                        (*cmsg).cmsg_type = UDP_SEGMENT;
                        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
                        std::ptr::write_unaligned(
                            libc::CMSG_DATA(cmsg).cast::<u16>(),
                            g.segment as u16,
                        );
                    }
                }
                offset += g.bytes;
                first += g.count;
            }
            // SAFETY: the first `ngroups` headers point at payloads inside `self.data`,
            // their iovecs in `iovs`, addresses in `names` and control messages in
            // `controls`, all alive and unmoved until the call returns. sendmmsg only reads
            // through these pointers (the fields are `*mut` in the C API).
            let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), ngroups as libc::c_uint, 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    // A grouped send refused: this kernel or route cannot do GSO. Turn it
                    // off and send the same datagrams one by one.
                    _ if groups[0].count > 1 => {
                        log::debug!("UDP GSO refused ({err}): sending datagrams one by one");
                        self.gso = false;
                    }
                    // The first datagram was refused: drop it and go on with the rest.
                    _ => {
                        log::debug!("sendmmsg to {}: {err}", self.msgs[0].0);
                        self.pop_front();
                        done.dropped += 1;
                    }
                }
                continue;
            }
            for g in groups.iter().take(n as usize) {
                for _ in 0..g.count {
                    done.bytes += self.pop_front() as u64;
                    done.sent += 1;
                }
            }
            // If the kernel took only part of the batch, its buffer is full or the next
            // message has an error that the next call reports: loop once more.
        }
        if self.msgs.is_empty() {
            self.data.clear();
            self.head = 0;
        }
        done
    }

    fn pop_front(&mut self) -> usize {
        let (_, len) = self.msgs.pop_front().expect("non-empty");
        self.head += len;
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        let to = b.local_addr().expect("addr");
        let mut q = SendQueue::default();
        for i in 0..40u8 {
            q.push(&vec![i; 1 + i as usize], to);
        }
        let f = q.flush(a.as_raw_fd());
        assert_eq!(f.sent, 40);
        assert_eq!(f.dropped, 0);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);

        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        loop {
            match batch.recv(b.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let (data, from) = batch.get(i);
                        assert_eq!(from, Some(a.local_addr().expect("addr")));
                        got.push(data.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 40);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 1 + i]);
        }
        assert!(
            matches!(batch.recv(b.as_raw_fd()), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        );
    }

    /// Receives everything waiting on non-blocking `b`.
    fn drain(b: &std::net::UdpSocket) -> Vec<(Vec<u8>, Option<SocketAddr>)> {
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        loop {
            match batch.recv(b.as_raw_fd()) {
                Ok(n) => (0..n).for_each(|i| {
                    let (d, from) = batch.get(i);
                    got.push((d.to_vec(), from))
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn same_size_datagrams_grouped_by_gso_arrive_as_separate_datagrams() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let c = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        c.set_nonblocking(true).expect("nonblocking");
        let (to_b, to_c) = (b.local_addr().expect("addr"), c.local_addr().expect("addr"));
        let mut q = SendQueue::default();
        let mut want_b = Vec::new();
        // 150 datagrams of 64 bytes (more than one group of 64), a short one that ends the
        // group, one for c in the middle of b's run, and an empty one.
        for i in 0..150u32 {
            let d: Vec<u8> = (0..64).map(|j| (i * 7 + j) as u8).collect();
            q.push(&d, to_b);
            want_b.push(d);
            if i == 100 {
                q.push(b"for c", to_c);
            }
        }
        q.push(b"short", to_b);
        want_b.push(b"short".to_vec());
        q.push(b"", to_b);
        want_b.push(Vec::new());
        let f = q.flush(a.as_raw_fd());
        assert!(
            q.gso,
            "this kernel (Linux >= 4.18) takes UDP GSO on loopback"
        );
        assert_eq!(f.sent, 153);
        assert_eq!(f.dropped, 0);
        let from_a = Some(a.local_addr().expect("addr"));
        let got_b: Vec<Vec<u8>> = drain(&b)
            .into_iter()
            .map(|(d, from)| {
                assert_eq!(from, from_a);
                d
            })
            .collect();
        assert_eq!(got_b, want_b, "same datagrams, same boundaries, same order");
        assert_eq!(drain(&c), vec![(b"for c".to_vec(), from_a)]);
    }

    #[test]
    fn a_refused_datagram_is_dropped_and_the_rest_still_go() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        a.set_nonblocking(true).expect("nonblocking");
        let to = b.local_addr().expect("addr");
        let mut q = SendQueue::default();
        q.push(&vec![0; 70_000], to); // larger than any UDP datagram: EMSGSIZE
        q.push(b"ok", to);
        let f = q.flush(a.as_raw_fd());
        assert_eq!(
            f,
            Flushed {
                sent: 1,
                bytes: 2,
                dropped: 1
            }
        );
        let mut buf = [0u8; 8];
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let (n, _) = b.recv_from(&mut buf).expect("the second one arrived");
        assert_eq!(&buf[..n], b"ok");
    }
}
