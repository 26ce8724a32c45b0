"""The client carries the service's pipeline steps for dates and text, byte for byte, so a
downloaded bundle that uses them opens without the server package."""

from pathlib import Path

import mlservice
import mlservice_client


def test_the_client_copy_is_the_service_file():
    server = Path(mlservice.__file__).with_name("table_features.py").read_bytes()
    client = Path(mlservice_client.__file__).with_name("table_features.py").read_bytes()
    assert client == server, "edit src/mlservice/table_features.py and copy it to the client"
