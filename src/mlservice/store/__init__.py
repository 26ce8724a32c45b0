"""What the service keeps: records in Redis, files in the artifact store, published models.

* :mod:`.records`: the record types (checked on read) and statuses.
* :mod:`.catalog`: records in Redis, with their owners.
* :mod:`.user_records`: how a user account is kept and read on the hot path.
* :mod:`.artifacts`: the directory of data set files and bundle files.
* :mod:`.csv_dialect`: how a CSV file is written (its delimiter).
* :mod:`.dataset_files`: data set files: formats, profiling, loading.
* :mod:`.bundles`: the signed model file, and the names training and serving share.
* :mod:`.published`: bundle bytes and versions in Redis, read by every API worker.
* :mod:`.model_store`: a model's record, bundle file and published bytes, kept in step.
* :mod:`.leases`: how long work says it is still on it, and finding work whose worker died.
* :mod:`.training_runs`: a training run's lease, compile step and callbacks.
* :mod:`.report_files`: a model's training report as files (read without plotting code).
"""
