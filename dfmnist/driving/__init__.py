"""Stage `rules/driving.smk`: track, judge and crop each driving take (`shard`) into a
smoothed square face window per frame (`crop`)."""
