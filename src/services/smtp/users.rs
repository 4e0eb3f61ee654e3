//! Who may send (SMTP AUTH): a users file of Argon2id hashes, checked on a thread of its own.
//!
//! The file holds one `user:hash` per line (`#` starts a comment), the hash a PHC string:
//!
//! ```text
//! ann:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$2x8k...
//! ```
//!
//! `smtp_server --hash-password` prints such a line for a password read on stdin, as
//! `doveadm pw` and `htpasswd` do. A password is never stored: a line whose hash is not an
//! Argon2 PHC string is refused when the file is loaded.
//!
//! Argon2 is slow on purpose (tens of milliseconds and 19 MiB per check with the defaults
//! of RFC 9106's second recommended option), which is what makes a stolen file costly to
//! attack, and also what must never run on the loop. So checks run on the auth thread and
//! come back as a [`Checked`] report through the session's [`Notifier`]. A user that does
//! not exist is checked against a dummy hash, so the answer takes as long either way and
//! does not say which names exist.

use crate::reactor::Notifier;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};

/// The users and their hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

impl Users {
    /// Reads a users file; the error names the line that is wrong.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut hashes = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:hash", n + 1));
            };
            if user.is_empty() || user.contains(char::is_whitespace) {
                return Err(format!(
                    "line {}: a user name without spaces is needed",
                    n + 1
                ));
            }
            match PasswordHash::new(hash) {
                Ok(parsed) if parsed.algorithm.as_str().starts_with("argon2") => {}
                _ => {
                    return Err(format!(
                        "line {}: the hash of {user} is not an Argon2 PHC string \
                         (never a password: make the line with smtp_server --hash-password {user})",
                        n + 1
                    ));
                }
            }
            hashes.insert(user.to_string(), hash.to_string());
        }
        Ok(Users { hashes })
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// No users at all.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Is `password` right for `user`? Slow (see the module doc): never call it on the loop.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let dummy;
        let (hash, exists) = match self.hashes.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => {
                dummy = hash_password("not the password").unwrap_or_default();
                (dummy.as_str(), false)
            }
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let right = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        right && exists
    }
}

/// The PHC string of `password`, with a fresh random salt and Argon2id's defaults.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// The report a session receives in `notified` after it asked [`Auth::check`].
#[derive(Debug)]
pub struct Checked {
    /// The user name the client gave.
    pub user: String,
    /// Whether the password was right.
    pub ok: bool,
}

struct Job {
    user: String,
    password: String,
    notifier: Notifier,
}

/// A handle on the auth thread, which starts with the first AUTH.
#[derive(Debug, Clone)]
pub struct Auth {
    users: Arc<Users>,
    jobs: Rc<OnceCell<Sender<Job>>>,
}

impl Auth {
    /// Checks against `users`.
    pub fn new(users: Users) -> Auth {
        Auth {
            users: Arc::new(users),
            jobs: Rc::new(OnceCell::new()),
        }
    }

    /// Checks `user`'s `password` off the loop; a [`Checked`] report comes back through
    /// `notifier`. If the thread cannot be started or is gone, the report is sent at once:
    /// refused.
    pub fn check(&self, user: String, password: String, notifier: Notifier) {
        let job = Job {
            user,
            password,
            notifier,
        };
        let job = match self.sender() {
            Ok(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(lost) => lost.0,
            },
            Err(e) => {
                log::warn!("smtp: cannot start the auth thread: {e}");
                job
            }
        };
        let Job { user, notifier, .. } = job;
        notifier.notify(Box::new(Checked { user, ok: false }));
    }

    fn sender(&self) -> std::io::Result<&Sender<Job>> {
        if let Some(jobs) = self.jobs.get() {
            return Ok(jobs);
        }
        let (jobs, queue) = channel::<Job>();
        let users = Arc::clone(&self.users);
        std::thread::Builder::new()
            .name("smtp-auth".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let ok = users.check(&job.user, &job.password);
                    job.notifier
                        .notify(Box::new(Checked { user: job.user, ok }));
                }
            })?;
        Ok(self.jobs.get_or_init(|| jobs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_line_checks_and_a_wrong_password_does_not() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = Users::parse(&format!("# users\nann:{hash}\n")).expect("parse");
        assert_eq!(users.len(), 1);
        assert!(users.check("ann", "s3cret"));
        assert!(!users.check("ann", "S3cret"));
        assert!(!users.check("bob", "s3cret"), "no such user");
    }

    #[test]
    fn a_plaintext_password_in_the_file_is_refused() {
        let err = Users::parse("ann:hunter2\n").expect_err("plaintext");
        assert!(
            err.contains("line 1: the hash of ann is not an Argon2 PHC string"),
            "{err}"
        );
        let err = Users::parse("ann\n").expect_err("no colon");
        assert!(err.contains("line 1: expected user:hash"), "{err}");
    }
}
