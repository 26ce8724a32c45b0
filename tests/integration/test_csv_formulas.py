"""CSV downloads never hand a spreadsheet a formula ([service] csv_formula_escape = true).

Text cells starting with = + - @ come back with a leading apostrophe; numbers
(-5 is a number, not a formula) and the stored file (what training reads) are
untouched. A CSV without such cells is the uploaded bytes, sent by NGINX.
"""

import csv
import io

import pandas as pd

from tests.helpers import upload

HOSTILE = (
    "name;formula;amount\n"
    'ann;=HYPERLINK("http://evil.example","x");-5\n'
    "bob;+1+1;3.5\n"
    "cid;@SUM(A1);7\n"
    "dan;-cmd;1\n"
    "eve;plain;2\n"
)


def post_csv(client, token, text: str) -> dict:
    response = client.post(
        "/resource/datasets?name=hostile.csv",
        token,
        data=text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_formula_cells_are_escaped_on_download(client, admin_token):
    record = post_csv(client, admin_token, HOSTILE)
    assert record["formula_cells"] == 4
    response = client.get(f"/resource/datasets/{record['id']}/download", admin_token)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Cache-Control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(response.text), delimiter=";"))
    assert rows == [
        ["name", "formula", "amount"],
        ["ann", '\'=HYPERLINK("http://evil.example","x")', "-5"],
        ["bob", "'+1+1", "3.5"],
        ["cid", "'@SUM(A1)", "7"],
        ["dan", "'-cmd", "1"],
        ["eve", "plain", "2"],
    ]
    client.delete(f"/resource/datasets/{record['id']}", admin_token)


def test_a_csv_without_formulas_is_the_uploaded_bytes(client, admin_token):
    frame = pd.DataFrame({"x": [1.5, -2.0], "label": ["a", "b"]})
    dataset_id = upload(client, admin_token, frame)
    record = client.get(f"/resource/datasets/{dataset_id}", admin_token).json()
    assert record["formula_cells"] == 0
    response = client.get(f"/resource/datasets/{dataset_id}/download", admin_token)
    assert response.text == frame.to_csv(index=False)
    client.delete(f"/resource/datasets/{dataset_id}", admin_token)


def test_formula_header_cells_are_escaped_on_download(client, admin_token):
    """A column name is a cell too: the header row is escaped like the rows."""
    record = post_csv(client, admin_token, '=cmd|"/c calc"!A1;@name;plain\n1;2;3\n')
    assert record["formula_cells"] == 2
    response = client.get(f"/resource/datasets/{record['id']}/download", admin_token)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text), delimiter=";"))
    assert rows == [['\'=cmd|"/c calc"!A1', "'@name", "plain"], ["1", "2", "3"]]
    client.delete(f"/resource/datasets/{record['id']}", admin_token)
