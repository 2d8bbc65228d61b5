//! Scheduled sync: claiming due tasks, executions, run now / pause / resume / cancel / retry.
