//! A feedlab program (`server`, `floor`, `loadgen serve`) as a child process, and the one
//! parser of the line each prints first: `feedlab listening on http://127.0.0.1:PORT/`.

use std::{
    io::BufRead as _,
    net::SocketAddr,
    process::{Child, Command, Stdio},
};

pub use feedlab_wire::listening::parse as parse_listening_line;

/// A running feedlab program, killed and reaped when dropped (or [`ChildProcess::kill_9`]).
pub struct ChildProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub scheme: String,
}

impl ChildProcess {
    /// Spawns `command` with stdout piped, waits for its first line (the address it listens
    /// on) and keeps draining stdout so the program never blocks writing to it.
    ///
    /// # Panics
    /// When it does not start or its first line is not a "feedlab listening on" line.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = match lines.next() {
            Some(Ok(line)) => line,
            other => {
                let status = child.wait();
                panic!("{command:?}: no first line ({other:?}), exited {status:?}")
            }
        };
        let (scheme, addr) = parse_listening_line(&first)
            .unwrap_or_else(|| panic!("{command:?}: unexpected first line {first:?}"));
        let scheme = scheme.to_owned();
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            addr,
            scheme,
        }
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    ///
    /// # Panics
    /// When the process cannot be killed or reaped.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
