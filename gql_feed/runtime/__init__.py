"""Process-wide facilities: the GIL switch interval, the collector, worker threads, SIGTERM."""
