"""DaskExecutor's runner: task functions on a Dask cluster, FlowWeaver stays the scheduler."""
