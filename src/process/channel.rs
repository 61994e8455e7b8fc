//! The sync channel between the runtime and the sandbox's first process: a
//! SOCK_SEQPACKET socket pair, so every message arrives whole.
//!
//! Parent to child: one `go` once the uid/gid maps are written (only for a
//! new user namespace), the network namespace the runtime made for the
//! child, and the seccomp filter it generated after the clone, in that
//! order, each only when the plan says so. Child to parent: optional `step` notices (when debug
//! logging is on) and at most one `error`. A successful execve closes the
//! child's end (it is close-on-exec), which the parent reads as end of file:
//! the program is running.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

const GO: &[u8] = b"go";
const STEP: u8 = b'S';
const ERROR: u8 = b'E';
const TERMINAL: u8 = b'T';
const READY: u8 = b'R';
const STATE: u8 = b'J';
const PID: u8 = b'P';
const NETWORK: u8 = b'N';
const FILTER: u8 = b'F';

/// A failure in the child, as reported over the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailure {
    /// The setup step that failed.
    pub step: String,
    /// The errno, when the failure was a syscall's.
    pub errno: Option<i32>,
    /// The rendered error.
    pub message: String,
}

/// What the parent reads from the child.
#[derive(Debug)]
pub enum Report {
    /// A setup step is starting (debug logging only).
    Step(String),
    /// Setup failed.
    Failed(ChildFailure),
    /// The master side of the sandbox's pseudo-terminal.
    Terminal(OwnedFd),
    /// Setup is complete and the child waits for `start`.
    Ready,
    /// The pid of the program's process, when it is not the first process
    /// (`exec`: the first one stays outside the joined pid namespace).
    Program(i32),
    /// The channel closed: the program was executed (or the child died).
    Closed,
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the two ends: (parent's, child's). Both are close-on-exec.
///
/// # Errors
///
/// socketpair(2)'s error.
pub fn channel() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    fn send_raw(&self, buf: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        send(self.fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Parent: lets the child go on.
    pub fn send_go(&self) -> io::Result<()> {
        self.send_raw(GO)
    }

    /// Child: waits for `go`. End of file means the parent is gone.
    pub fn wait_go(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 8];
        let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if &buf[..n] == GO {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the runtime went away before the sandbox started",
            ))
        }
    }

    /// Child: checks, without waiting, that the parent still holds its end.
    /// A child that does not wait for `go` asks this once, after setting
    /// its parent-death signal: a parent that died before that would
    /// otherwise leave it running unsupervised.
    pub fn check_runtime(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 8];
        match recv(
            self.fd.as_raw_fd(),
            &mut buf,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK,
        ) {
            Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the runtime went away before the sandbox started",
            )),
            Ok(_) => Ok(()),
        }
    }

    /// Wraps an accepted connection on the start socket, which speaks the
    /// same messages.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    /// Sends the container's state JSON (for hooks that run inside it).
    ///
    /// # Errors
    ///
    /// send(2)'s error.
    pub fn send_state(&self, state: &str) -> io::Result<()> {
        let mut msg = vec![STATE];
        msg.extend_from_slice(state.as_bytes());
        self.send_raw(&msg)
    }

    /// Receives the state JSON sent with [`Channel::send_state`].
    ///
    /// # Errors
    ///
    /// recv(2)'s error, or another message or end of file instead.
    pub fn recv_state(&self) -> io::Result<String> {
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 65536];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if n == 0 || buf[0] != STATE {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the runtime sent no container state",
            ));
        }
        Ok(String::from_utf8_lossy(&buf[1..n]).into_owned())
    }

    /// Child: tells the pid of the process that will exec the program.
    pub fn send_program_pid(&self, pid: i32) {
        let mut msg = vec![PID];
        msg.extend_from_slice(pid.to_string().as_bytes());
        // If the parent is gone there is nobody left to tell.
        let _ = self.send_raw(&msg);
    }

    /// Child: says that setup is complete and it now waits for `start`.
    pub fn send_ready(&self) {
        // If the parent is gone there is nobody left to tell.
        let _ = self.send_raw(&[READY]);
    }

    /// Child: announces a step (only called when debug logging is on).
    pub fn send_step(&self, step: &str) {
        let mut msg = vec![STEP];
        msg.extend_from_slice(step.as_bytes());
        // A lost notice only loses a log line.
        let _ = self.send_raw(&msg);
    }

    /// Child: reports the failure of `step`.
    pub fn send_failure(&self, step: &str, errno: Option<i32>, message: &str) {
        let msg = format!("{}\0{}\0{}", step, errno.unwrap_or(0), message);
        let mut buf = vec![ERROR];
        buf.extend_from_slice(msg.as_bytes());
        // If the parent is gone there is nobody left to tell.
        let _ = self.send_raw(&buf);
    }

    /// Child: hands the master side of its pseudo-terminal to the parent
    /// (SCM_RIGHTS, unix(7)).
    ///
    /// # Errors
    ///
    /// sendmsg(2)'s error.
    pub fn send_terminal(&self, master: &OwnedFd) -> io::Result<()> {
        self.send_fd(TERMINAL, master)
    }

    /// One message of kind `kind` carrying `fd` (SCM_RIGHTS).
    fn send_fd(&self, kind: u8, fd: &OwnedFd) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, UnixAddr};
        use std::os::fd::AsRawFd;
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let body = [kind];
        let iov = [io::IoSlice::new(&body)];
        sendmsg::<UnixAddr>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Parent: hands over the network namespace made for the child.
    ///
    /// # Errors
    ///
    /// sendmsg(2)'s error.
    pub fn send_network(&self, namespace: &OwnedFd) -> io::Result<()> {
        self.send_fd(NETWORK, namespace)
    }

    /// Child: waits for the network namespace from [`Channel::send_network`].
    ///
    /// # Errors
    ///
    /// recvmsg(2)'s error; end of file when the runtime went away.
    pub fn recv_network(&self) -> io::Result<OwnedFd> {
        let mut buf = [0u8; 8];
        let (n, mut fds) = self.recv_message(&mut buf)?;
        match (n, fds.pop()) {
            (0, _) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the runtime went away before handing over the network namespace",
            )),
            (_, Some(fd)) if buf[0] == NETWORK => Ok(fd),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected the network namespace from the runtime",
            )),
        }
    }

    /// One message into `buf`, with the descriptors it carries (SCM_RIGHTS,
    /// made close-on-exec); 0 bytes is end of file.
    fn recv_message(&self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, UnixAddr};
        use std::os::fd::{AsRawFd, FromRawFd};
        let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        loop {
            let mut iov = [io::IoSliceMut::new(buf)];
            let msg = match recvmsg::<UnixAddr>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(msg) => msg,
            };
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(received) = cmsg {
                    // SAFETY: SCM_RIGHTS just installed these descriptors in
                    // this process; nothing else owns them.
                    fds.extend(
                        received
                            .into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            return Ok((msg.bytes, fds));
        }
    }

    /// Parent: sends the seccomp filter generated after the clone.
    ///
    /// # Errors
    ///
    /// send(2)'s error.
    pub fn send_filter(&self, filter: &crate::seccomp::CompiledFilter) -> io::Result<()> {
        let mut buf = vec![FILTER];
        buf.extend_from_slice(&filter.to_bytes());
        self.send_raw(&buf)
    }

    /// Child: waits for the filter from [`Channel::send_filter`].
    ///
    /// # Errors
    ///
    /// recv(2)'s error; end of file when the runtime went away; anything
    /// else than a whole filter.
    pub fn recv_filter(&self) -> io::Result<crate::seccomp::CompiledFilter> {
        use std::os::fd::AsRawFd;
        // MSG_TRUNC with MSG_PEEK gives the waiting message's whole length
        // (unix(7)), so the buffer is that size and no bigger.
        let len = loop {
            match recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        let mut buf = vec![0u8; len];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        match buf[..n].split_first() {
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the runtime went away before sending the seccomp filter",
            )),
            Some((&FILTER, body)) => {
                crate::seccomp::CompiledFilter::from_bytes(body).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "a malformed seccomp filter")
                })
            }
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected the seccomp filter from the runtime",
            )),
        }
    }

    /// Parent: reads the next report.
    ///
    /// # Errors
    ///
    /// recv(2)'s error.
    pub fn read_report(&self) -> io::Result<Report> {
        let mut buf = vec![0u8; 8192];
        let (n, mut fds) = self.recv_message(&mut buf)?;
        if n == 0 {
            return Ok(Report::Closed);
        }
        if buf[0] == TERMINAL {
            return match fds.pop() {
                Some(master) => Ok(Report::Terminal(master)),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "terminal message without a descriptor",
                )),
            };
        }
        let body = String::from_utf8_lossy(&buf[1..n]).into_owned();
        Ok(match buf[0] {
            STEP => Report::Step(body),
            READY => Report::Ready,
            PID => Report::Program(body.parse().unwrap_or_default()),
            _ => {
                let mut parts = body.splitn(3, '\0');
                let step = parts.next().unwrap_or_default().to_string();
                let errno = parts
                    .next()
                    .and_then(|e| e.parse().ok())
                    .filter(|e| *e != 0);
                let message = parts.next().unwrap_or_default().to_string();
                Report::Failed(ChildFailure {
                    step,
                    errno,
                    message,
                })
            }
        })
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_close_reads_as_closed() {
        let (parent, child) = channel().unwrap();
        parent.send_go().unwrap();
        child.wait_go().unwrap();
        child.send_step("mounts");
        child.send_failure("exec ./agent", Some(libc::ENOENT), "no such file");
        assert!(matches!(parent.read_report().unwrap(), Report::Step(s) if s == "mounts"));
        let expected = ChildFailure {
            step: "exec ./agent".into(),
            errno: Some(libc::ENOENT),
            message: "no such file".into(),
        };
        assert!(matches!(parent.read_report().unwrap(), Report::Failed(f) if f == expected));
        let (_, dev_null) = (0, std::fs::File::open("/dev/null").unwrap());
        child.send_terminal(&OwnedFd::from(dev_null)).unwrap();
        assert!(matches!(parent.read_report().unwrap(), Report::Terminal(_)));
        drop(child);
        assert!(matches!(parent.read_report().unwrap(), Report::Closed));
    }
}
