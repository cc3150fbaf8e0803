from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest

from app.storage import ObjectStore
from app.storage.disposition import content_disposition

pytestmark = pytest.mark.no_database


def test_disposition_keeps_the_exact_utf8_name_and_an_ascii_fallback() -> None:
    value = content_disposition('weights/modèle "v1".safetensors')
    assert value.startswith('attachment; filename="mod_le _v1_.safetensors"; ')
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == 'modèle "v1".safetensors'


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_a_presigned_url_names_the_file_in_utf8(store: ObjectStore) -> None:
    writer = store.writer()
    writer.write(b"bytes")
    blob = writer.commit()
    url = store.presign_get(blob.sha256, expires_in=60, filename="dir/naïve.bin")
    assert url is not None
    query = parse_qs(urlparse(url).query)
    assert query["response-content-disposition"] == [content_disposition("naïve.bin")]
    resp = httpx.get(url)
    assert resp.content == b"bytes"
    assert "filename*=UTF-8''na%C3%AFve.bin" in resp.headers["content-disposition"]
