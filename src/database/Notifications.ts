/**
 * PostgreSQL NOTIFY channels, shared by the statement that sends and the processes that LISTEN.
 * `APPENDS_CHANNEL`: every append statement that wrote events notifies it (delivered at its commit, one per
 * statement, so one per group-committed batch); relays wake on it, order watches re-read on it.
 */
export const APPENDS_CHANNEL = "appends"
