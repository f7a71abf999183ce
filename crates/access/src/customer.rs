//! One customer as staff see them (filled in by the boundaries work, issue #13).
