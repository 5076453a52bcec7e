//! Placeholder lists for statements whose number of values depends on the batch.
//!
//! Both engines take `$n` placeholders through sqlx's `Any` driver, so these are written once.

/// `($1, $2), ($3, $4), …`: placeholders for `rows` rows of `columns` values, for multi-row
/// statements that both engines accept.
pub fn row_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", list_placeholders(row * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$first, $first+1, …`: `count` placeholders, for `IN (…)` lists.
pub fn list_placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
