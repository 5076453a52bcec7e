//! Why applying events failed, typed so that the consume loop decides with one `match`: a
//! transient fault (the store unreachable or overloaded) is waited out with the batch in hand,
//! while a permanent one (the store refuses the data itself) would fail the same way forever,
//! so the event behind it is dead-lettered and the queue moves on.

use sqlx::error::ErrorKind;

/// A failure to store a batch's effects.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Retrying the same batch later can succeed.
    #[error("the store is unavailable: {0}")]
    Transient(#[source] sqlx::Error),
    /// The store refuses what the batch holds; the same batch fails every time.
    #[error("the store refused the data: {0}")]
    Permanent(#[source] sqlx::Error),
}

impl ApplyError {
    /// Whether retrying the same batch can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApplyError::Transient(_))
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        if is_permanent(&error) {
            ApplyError::Permanent(error)
        } else {
            ApplyError::Transient(error)
        }
    }
}

/// Whether the store refused the data rather than failed to serve. Unknown causes count as
/// transient: a consumer that waits (and says so through its lag, gauge and readiness) loses
/// nothing, while one that dead-letters on a fault of its own would set good events aside.
fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            if matches!(
                database.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            ) {
                return true;
            }
            database.code().is_some_and(|code| permanent_code(&code))
        }
        // A value that cannot be encoded for the engine is a property of the data.
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// PostgreSQL SQLSTATE classes and SQLite result codes that describe the data, not the server.
fn permanent_code(code: &str) -> bool {
    // PostgreSQL: 22 data exception (e.g. 22021 invalid byte sequence, 22P05 untranslatable
    // character), 23 integrity constraint, 54 program limit (e.g. an index row too large).
    if code.len() == 5 {
        return matches!(&code[..2], "22" | "23" | "54");
    }
    // SQLite (primary code = extended code & 0xff): 18 TOOBIG, 19 CONSTRAINT, 20 MISMATCH,
    // 25 RANGE.
    code.parse::<u32>()
        .is_ok_and(|extended| matches!(extended & 0xff, 18 | 19 | 20 | 25))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_are_permanent_and_faults_transient() {
        for code in ["22021", "22P05", "23505", "54000", "19", "2067", "18", "20"] {
            assert!(permanent_code(code), "{code}");
        }
        for code in [
            "08006", "53300", "57P01", "40001", "42P01", "XX000", "5", "6", "10", "13",
        ] {
            assert!(!permanent_code(code), "{code}");
        }
        assert!(ApplyError::from(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(ApplyError::from(sqlx::Error::Io(std::io::Error::other("reset"))).is_retryable());
    }
}
