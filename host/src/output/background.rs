//! A writer that hands its full buffers (or one given whole, [`BackgroundWriter::take_whole`]) to
//! a thread of its own, which writes them out: while that thread is in the system calls (and
//! the reader wakes up), exo formats the next rows. At most [`DEPTH`] buffers wait, so memory
//! stays bounded. An error the thread meets (a full disk, a reader that went away) comes back,
//! with its kind, at the next write or flush, and from [`BackgroundWriter::finish`]. While the
//! queue is full (the reader is slower than exo), a write waits and goes on the moment the
//! thread takes a buffer. Once the user presses Ctrl-C
//! ([`crate::output::interrupted`]), the next write that hands a buffer over (or one waiting
//! for room, or [`BackgroundWriter::finish`] waiting for the thread, within
//! [`INTERRUPT_CHECK`]) fails, and so does every write after it: the rest of exo may not be
//! able to notice Ctrl-C while it waits here. (Not with [`io::ErrorKind::Interrupted`], which
//! `write_all` would retry.) A buffer is handed over only where a line ends, so a file that
//! Ctrl-C cut short ends with a whole line (a pipe's reader may still get part of one: exo
//! exits while the thread writes).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, bounded};

/// The size of a buffer handed over.
const CHUNK: usize = 64 * 1024;
/// How many buffers may wait for the thread.
const DEPTH: usize = 4;
/// How often a write that waits for room looks whether the user pressed Ctrl-C (it goes on
/// as soon as the thread takes a buffer).
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

/// What the thread is handed: a buffer, and where in it the bytes to write begin.
type Handed = (Vec<u8>, usize);

/// The first error the writing thread met.
type Failure = Arc<Mutex<Option<(io::ErrorKind, String)>>>;

/// Buffers what is written and hands it to a writing thread. `flush` hands over what is
/// buffered without waiting for it to be written; [`Self::finish`] waits.
pub struct BackgroundWriter {
    buffer: Vec<u8>,
    sender: Option<Sender<Handed>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    done: Receiver<()>,
    failure: Failure,
    /// Whether the user pressed Ctrl-C ([`crate::output::interrupted`]; a test's own flag in
    /// tests).
    interrupted: fn() -> bool,
    /// Ctrl-C was seen: every write fails.
    stopped: bool,
}

impl BackgroundWriter {
    /// A writer whose thread writes to the sink `open` makes there (for stdout, its lock).
    pub fn spawn<W: Write>(open: impl FnOnce() -> W + Send + 'static) -> Self {
        let (sender, receiver) = bounded(DEPTH);
        let failure = Failure::default();
        let failed = failure.clone();
        let (ending, done) = bounded::<()>(0);
        let thread = std::thread::spawn(move || {
            let _ending = ending;
            write_all(open(), &receiver, &failed);
        });
        Self {
            buffer: Vec::with_capacity(CHUNK),
            sender: Some(sender),
            thread: Some(thread),
            done,
            failure,
            interrupted: crate::output::interrupted,
            stopped: false,
        }
    }

    /// Writes what is left, waits for the thread, and says whether everything was written.
    pub fn finish(mut self) -> io::Result<()> {
        self.hand_over()?;
        self.stop();
        if self.stopped {
            return Err(stopped());
        }
        self.failed()
    }

    /// Hands over what is buffered and leaves the thread to write it, without waiting (the
    /// user interrupted, and the reader may not be reading): the process ends anyway.
    pub fn abandon(mut self) {
        if let Some(sender) = self.sender.take() {
            // Never blocks: a full queue means the reader is not reading, and the rest is lost.
            let _ = sender.try_send((std::mem::take(&mut self.buffer), 0));
        }
        drop(self.thread.take());
    }

    /// Hands `bytes[start..]`, which ends where a line ends, to the thread whole, without
    /// copying it, after what is buffered.
    pub fn take_whole(&mut self, bytes: Vec<u8>, start: usize) -> io::Result<()> {
        if self.stopped {
            return Err(stopped());
        }
        self.hand_over()?;
        let start = start.min(bytes.len());
        self.send((bytes, start))
    }

    fn hand_over(&mut self) -> io::Result<()> {
        self.failed()?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.send((full, 0))
    }

    /// Waits for room in the queue, unless the user presses Ctrl-C.
    fn send(&mut self, mut handed: Handed) -> io::Result<()> {
        self.failed()?;
        let Some(sender) = self.sender.as_ref() else {
            return Err(io::Error::other("the output was closed"));
        };
        loop {
            // Looked at before each try too: a reader slower than exo but steady takes a buffer
            // within every timeout, and a whole page would be written at its pace.
            if (self.interrupted)() {
                self.stopped = true;
                return Err(stopped());
            }
            match sender.send_timeout(handed, INTERRUPT_CHECK) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(back)) => handed = back,
                // The thread is gone: it says why, or it panicked.
                Err(SendTimeoutError::Disconnected(_)) => {
                    return self
                        .failed()
                        .and(Err(io::Error::other("the output thread stopped")));
                }
            }
        }
    }

    fn failed(&self) -> io::Result<()> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match failure.as_ref() {
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    /// Waits for the thread to write what it was handed, unless the user presses Ctrl-C.
    fn stop(&mut self) {
        drop(self.sender.take());
        if self.thread.is_none() {
            return;
        }
        while let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(INTERRUPT_CHECK) {
            if (self.interrupted)() {
                self.stopped = true;
                drop(self.thread.take());
                return;
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.stopped {
            return Err(stopped());
        }
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK && self.buffer.ends_with(b"\n") {
            self.hand_over()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

impl Drop for BackgroundWriter {
    /// Waits for what was handed over (unless the user presses Ctrl-C); errors are
    /// [`Self::finish`]'s to report.
    fn drop(&mut self) {
        self.stop();
    }
}

/// What every write says once the user pressed Ctrl-C.
fn stopped() -> io::Error {
    io::Error::other("interrupted")
}

/// The thread: writes each buffer, and after a failure only drains the channel, so that the
/// writer never waits on a thread that stopped reading.
fn write_all(mut out: impl Write, buffers: &Receiver<Handed>, failure: &Failure) {
    let mut failed = false;
    for (buffer, start) in buffers {
        if failed {
            continue;
        }
        if let Err(error) = out.write_all(&buffer[start..]).and_then(|()| out.flush()) {
            failed = true;
            *failure.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((error.kind(), error.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes `room` bytes and then fails like a closed pipe.
    struct Closing {
        taken: Arc<Mutex<Vec<u8>>>,
        room: usize,
    }

    impl Write for Closing {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut taken = self.taken.lock().unwrap();
            if taken.len() + bytes.len() > self.room {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            taken.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn writer(room: usize) -> (BackgroundWriter, Arc<Mutex<Vec<u8>>>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let sink = Closing {
            taken: taken.clone(),
            room,
        };
        (BackgroundWriter::spawn(move || sink), taken)
    }

    #[test]
    fn everything_written_arrives_in_order() {
        let (mut out, taken) = writer(usize::MAX);
        let mut expected = Vec::new();
        for i in 0..50_000 {
            let line = format!("{{\"row\":{i}}}\n");
            out.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
            if i % 1000 == 0 {
                out.flush().unwrap();
            }
        }
        out.finish().unwrap();
        assert_eq!(*taken.lock().unwrap(), expected);
    }

    /// A line of `length` bytes, its newline included.
    fn line(length: usize) -> Vec<u8> {
        let mut line = vec![b'x'; length - 1];
        line.push(b'\n');
        line
    }

    /// A sink that never returns, like a pipe nobody reads.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            loop {
                std::thread::park();
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn abandoning_never_waits_for_a_reader_that_does_not_read() {
        let mut out = BackgroundWriter::spawn(|| Stuck);
        for _ in 0..DEPTH + 2 {
            let _ = out.write_all(&line(CHUNK));
            if out
                .sender
                .as_ref()
                .is_some_and(|s| s.try_send((Vec::new(), 0)).is_err())
            {
                break;
            }
        }
        let started = std::time::Instant::now();
        out.abandon();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn ctrl_c_stops_a_write_even_while_a_slow_reader_keeps_taking_buffers() {
        static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        /// A reader that takes each buffer well within the time a full queue waits.
        struct Steady;
        impl Write for Steady {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                std::thread::sleep(std::time::Duration::from_millis(5));
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = BackgroundWriter::spawn(|| Steady);
        out.interrupted = || PRESSED.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..DEPTH * 2 {
            out.write_all(&line(CHUNK)).unwrap();
        }
        PRESSED.store(true, std::sync::atomic::Ordering::Relaxed);
        let error = out.write_all(&line(CHUNK)).unwrap_err();
        assert_eq!(error.to_string(), "interrupted");
        assert_eq!(
            out.write(b"x").unwrap_err().to_string(),
            "interrupted",
            "every later write fails too"
        );
        out.abandon();
    }

    #[test]
    fn ctrl_c_stops_waiting_for_a_reader_that_does_not_read_at_the_end() {
        static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let mut out = BackgroundWriter::spawn(|| Stuck);
        out.interrupted = || PRESSED.load(std::sync::atomic::Ordering::Relaxed);
        // Little enough to fit the queue: no write ever waits, only the end does.
        out.write_all(&line(100)).unwrap();
        out.flush().unwrap();
        PRESSED.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(out.finish().unwrap_err().to_string(), "interrupted");
    }

    #[test]
    fn what_ctrl_c_cuts_short_ends_with_a_whole_line() {
        static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let (mut out, taken) = writer(usize::MAX);
        out.interrupted = || PRESSED.load(std::sync::atomic::Ordering::Relaxed);
        let mut expected = Vec::new();
        // Lines that do not fit a buffer evenly, written in two pieces as rows are.
        for i in 0..2_000 {
            if i == 1_000 {
                PRESSED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let row = vec![b'r'; 1_000 + i % 77];
            if out
                .write_all(&row)
                .and_then(|()| out.write_all(b"\n"))
                .is_err()
            {
                break;
            }
            expected.extend_from_slice(&row);
            expected.push(b'\n');
        }
        drop(out);
        let taken = taken.lock().unwrap();
        assert!(!taken.is_empty() && taken.ends_with(b"\n"));
        assert!(expected.starts_with(&taken), "only whole lines, in order");
    }

    #[test]
    fn a_buffer_taken_whole_comes_after_what_was_written_before_it() {
        let (mut out, taken) = writer(usize::MAX);
        out.write_all(b"first\n").unwrap();
        out.take_whole(b"envelope[second\nthird\n".to_vec(), 9)
            .unwrap();
        out.write_all(b"fourth\n").unwrap();
        out.finish().unwrap();
        assert_eq!(*taken.lock().unwrap(), b"first\nsecond\nthird\nfourth\n");
    }

    #[test]
    fn a_buffer_taken_whole_after_ctrl_c_or_a_closed_pipe_fails() {
        static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let (mut out, taken) = writer(10);
        out.interrupted = || PRESSED.load(std::sync::atomic::Ordering::Relaxed);
        // More than the reader takes: the pipe closes.
        let error = (0..1_000)
            .find_map(|_| out.take_whole(line(100), 0).err())
            .expect("the closed pipe is reported");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert!(taken.lock().unwrap().is_empty());
        let (mut out, _) = writer(usize::MAX);
        out.interrupted = || PRESSED.load(std::sync::atomic::Ordering::Relaxed);
        PRESSED.store(true, std::sync::atomic::Ordering::Relaxed);
        let error = out.take_whole(line(100), 0).unwrap_err();
        assert_eq!(error.to_string(), "interrupted");
    }

    #[test]
    fn a_reader_that_goes_away_is_reported_with_its_kind_and_nothing_hangs() {
        let (mut out, _) = writer(100_000);
        let error = (0..1_000_000)
            .find_map(|_| out.write_all(&line(1000)).err())
            .expect("the closed pipe is reported");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(out.finish().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
