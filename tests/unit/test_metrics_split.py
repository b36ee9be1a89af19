"""A server of several processes says at start when /metrics would show one process's counts."""

from pqh_site import prometheus


def test_several_processes_without_a_directory_are_named_in_one_line(monkeypatch, capfd):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert prometheus.warn_if_counts_split(processes=2, who="the web server")
    (line,) = capfd.readouterr().err.splitlines()
    assert line.startswith(
        "Warning: the web server runs 2 processes without PROMETHEUS_MULTIPROC_DIR"
    )


def test_one_process_or_a_shared_directory_say_nothing(monkeypatch, capfd, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert not prometheus.warn_if_counts_split(processes=1, who="the web server")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert not prometheus.warn_if_counts_split(processes=4, who="the web server")
    assert capfd.readouterr().err == ""
