//! hoist's wizard in a real pseudo-terminal, its screen kept up to date by a vt100 parser:
//! keys typed as a user would, the screen read as a user would, and the terminal hung up as a
//! dropped SSH session would.
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

use super::TestStack;

pub struct Wizard {
    screen: Arc<Mutex<vt100::Parser>>,
    written: Arc<AtomicU64>,
    writer: Option<Box<dyn Write + Send>>,
    /// Kept open as long as the wizard has a terminal: closing it hangs the wizard up.
    master: Option<Box<dyn MasterPty + Send>>,
    hang_up: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Wizard {
    pub fn start(stack: &TestStack, rows: u16, cols: u16) -> Wizard {
        Wizard::start_with(stack, rows, cols, &[])
    }

    /// hoist with `args` (e.g. a headless `rollback --yes`) in the terminal instead.
    pub fn start_with(stack: &TestStack, rows: u16, cols: u16, args: &[&str]) -> Wizard {
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("-C");
        cmd.arg(&stack.dir);
        cmd.arg("--state-dir");
        cmd.arg(&stack.state_dir);
        for a in args {
            cmd.arg(a);
        }
        Wizard::start_command(cmd, rows, cols)
    }

    /// Any command in the terminal (e.g. an `ssh` client running hoist on the far side).
    pub fn start_command(mut cmd: CommandBuilder, rows: u16, cols: u16) -> Wizard {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        let child = pty.slave.spawn_command(cmd).unwrap();
        // The child has its own handle; ours would keep the PTY open after it exits.
        drop(pty.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).unwrap(),
            NonZeroU16::new(cols).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let (parser, written, hang_up) = (
            screen.clone(),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (counter, stop) = (written.clone(), hang_up.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // The reader holds a copy of the master: it must end for a hang-up to happen.
            while !stop.load(Ordering::SeqCst) {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                        parser.lock().unwrap().process(&buf[..n]);
                    }
                }
            }
        });
        let writer = pty.master.take_writer().unwrap();
        Wizard {
            screen,
            written,
            writer: Some(writer),
            master: Some(pty.master),
            hang_up,
            reader: Some(reader),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.process_id().unwrap()
    }

    /// Bytes the wizard has written to the terminal so far.
    pub fn bytes(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `text`, failing with the screen after `secs`.
    pub fn wait_for(&self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.contents();
            if screen.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// On the start screen (within `secs`): takes the preselected next version (checked to be
    /// `next`) and confirms the plan, as a user would.
    pub fn upgrade_to_next(&mut self, next: &str, secs: u64) {
        self.wait_for("next step (recommended)", secs);
        assert!(
            self.contents().contains(&format!("> {next}")),
            "{}",
            self.contents()
        );
        self.keys("\r");
        // "[y/n]", or "[y/n, t: try it on a copy first]" where a rehearsal is offered.
        self.wait_for("? [y/n", 30);
        self.keys("y");
    }

    /// On the home (within `secs`): moves the cursor down to the entry `label`, once the home
    /// has looked at the journal (until then the entries say they are looking).
    pub fn choose(&mut self, label: &str, secs: u64) {
        self.wait_for(label, secs);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.contents().contains("looking at the journal") {
            assert!(
                Instant::now() < deadline,
                "the home never finished looking at the journal:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let wanted = format!("> {label}");
        for _ in 0..30 {
            if self.contents().contains(&wanted) {
                return;
            }
            self.keys("\x1b[B");
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!("the cursor never reached {label:?}:\n{}", self.contents());
    }

    pub fn keys(&mut self, keys: &str) {
        let writer = self.writer.as_mut().expect("the terminal is still there");
        writer.write_all(keys.as_bytes()).unwrap();
        writer.flush().unwrap();
    }

    /// Closes the terminal, as sshd does when the connection drops: the kernel sends the wizard
    /// SIGHUP and its terminal reads and writes fail from then on.
    pub fn hang_up(&mut self) {
        self.hang_up.store(true, Ordering::SeqCst);
        // `?` makes the wizard draw, which wakes the reader to see it must end.
        self.keys("?");
        drop(self.writer.take());
        drop(self.master.take());
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
    }

    pub fn exit_code(&mut self, secs: u64) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "hoist did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Wizard {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
