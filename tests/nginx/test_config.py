"""The shipped nginx configuration: rendered from the template, and valid for nginx."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nginx.harness import (
    DEFAULTS,
    SHIPPED,
    TEMPLATE,
    check_config,
    nginx_binary,
    render,
    write_config,
)


def test_shipped_config_is_the_template_rendered_with_the_defaults() -> None:
    assert SHIPPED.read_text() == render(TEMPLATE.read_text(), DEFAULTS)


def test_rendering_refuses_a_placeholder_without_a_value() -> None:
    values = {k: v for k, v in DEFAULTS.items() if k != "SITECHAT_LISTEN"}
    with pytest.raises(KeyError, match="SITECHAT_LISTEN"):
        render(TEMPLATE.read_text(), values)


def test_rendering_leaves_nginx_variables_alone() -> None:
    rendered = render(TEMPLATE.read_text(), DEFAULTS)
    assert "$proxy_add_x_forwarded_for" in rendered and "${" not in rendered


@pytest.mark.nginx
def test_shipped_config_is_valid_for_nginx(tmp_path: Path) -> None:
    binary = nginx_binary()
    conf = write_config(tmp_path, SHIPPED.read_text())
    result = check_config(binary, tmp_path, conf)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
