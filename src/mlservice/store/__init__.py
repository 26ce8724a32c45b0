"""What the service keeps: catalog records, data set files, model bundles, published models.

* :mod:`.records`: the record types and model statuses.
* :mod:`.catalog`: records in Redis, with their owners.
* :mod:`.artifacts`: the directory of data set files and bundle files.
* :mod:`.dataset_files`: data set files: formats, profiling, loading.
* :mod:`.bundles`: the signed model file, and the names training and serving share.
* :mod:`.published`: bundle bytes and versions in Redis, read by every API worker.
* :mod:`.model_lifecycle`: a model's record, bundle file and published bytes, kept in step.
"""
