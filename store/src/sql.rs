//! Placeholder lists for statements whose number of values depends on the batch.
//!
//! Both engines take `$n` placeholders through sqlx's `Any` driver, so statements are written
//! once. Statements with hundreds of values are the exception: SQLite finds each `$n` by
//! walking the statement's list of names (`sqlite3_bind_parameter_name`), so binding n named
//! values costs n² steps; it was the largest single cost of the embedded consumer. For SQLite
//! such statements are sent with anonymous `?` placeholders instead ([`positional`]).

use sqlx::AnyConnection;

/// `($1, $2), ($3, $4), …`: placeholders for `rows` rows of `columns` values, for multi-row
/// statements that both engines accept.
pub fn row_placeholders(rows: usize, columns: usize) -> String {
    row_placeholders_from(1, rows, columns)
}

/// `$first, $first+1, …`: `count` placeholders, for `IN (…)` lists.
pub fn list_placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(store_id, contact_key) IN (VALUES ($first, $first+1), …)` for `count` contacts, each bound
/// as its store then its key: the condition for "these contacts of this store".
///
/// Not `store_id = $1 AND contact_key IN (…)`: PostgreSQL estimates that a store newer than the
/// table's statistics holds one row, and then plans the key list as a filter over every row of
/// the store (auto_explain showed it reading a whole store per batch, 5–40 ms a statement
/// where a lookup per key takes 1). Matched as pairs, each key is a lookup on the index that
/// leads with both columns whatever the estimate. SQLite answers both forms from the index.
pub fn contacts_of_store(first: usize, count: usize) -> String {
    format!(
        "(store_id, contact_key) IN (VALUES {})",
        row_placeholders_from(first, count, 2)
    )
}

/// [`row_placeholders`] numbered from `first`.
fn row_placeholders_from(first: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", list_placeholders(first + row * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The engine behind a connection (a transaction derefs to one).
pub fn engine_of(connection: &AnyConnection) -> crate::Engine {
    if connection.backend_name().eq_ignore_ascii_case("sqlite") {
        crate::Engine::Sqlite
    } else {
        crate::Engine::Postgres
    }
}

/// `sql` for `engine`: unchanged for PostgreSQL; for SQLite every `$n` becomes `?`, which it
/// binds by position. The `$n` must therefore appear once each, in order `$1, $2, …` (checked
/// in debug builds); statements that repeat one keep their names.
pub fn positional(engine: crate::Engine, sql: String) -> String {
    if engine == crate::Engine::Postgres {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1usize;
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit());
        if !numbered {
            out.push(c);
            continue;
        }
        let start = at + 1;
        let mut end = start;
        while let Some((i, d)) = chars.peek().copied() {
            if !d.is_ascii_digit() {
                break;
            }
            end = i + 1;
            chars.next();
        }
        debug_assert_eq!(
            sql[start..end].parse::<usize>().ok(),
            Some(expected),
            "placeholders out of order in {sql}"
        );
        expected += 1;
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn rows_and_lists_number_from_where_they_start() {
        assert_eq!(row_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list_placeholders(3, 2), "$3, $4");
        assert_eq!(
            contacts_of_store(2, 2),
            "(store_id, contact_key) IN (VALUES ($2, $3), ($4, $5))"
        );
    }

    #[test]
    fn sqlite_gets_anonymous_placeholders_and_postgres_keeps_numbers() {
        let sql = format!(
            "UPDATE t SET a = $1 WHERE b = $2 AND c IN ({}) AND d = '$x'",
            list_placeholders(3, 3)
        );
        assert_eq!(
            positional(Engine::Sqlite, sql.clone()),
            "UPDATE t SET a = ? WHERE b = ? AND c IN (?, ?, ?) AND d = '$x'"
        );
        assert_eq!(positional(Engine::Postgres, sql.clone()), sql);
        assert_eq!(
            positional(Engine::Sqlite, format!("VALUES {}", row_placeholders(2, 2))),
            "VALUES (?, ?), (?, ?)"
        );
    }
}
