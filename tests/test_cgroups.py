"""Which cgroup folders' limits apply to this process (irflow_engine/cgroups.py)."""

from irflow_engine.cgroups import cgroup_folders


def test_v2_own_cgroup_and_ancestors(tmp_path):
    mount = tmp_path / "cgroup"
    (mount / "kubepods" / "pod1" / "ctr").mkdir(parents=True)
    (mount / "cgroup.controllers").write_text("cpu memory\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/kubepods/pod1/ctr\n")
    assert cgroup_folders("memory", proc, mount) == [
        mount / "kubepods" / "pod1" / "ctr", mount / "kubepods" / "pod1", mount / "kubepods", mount]


def test_v1_controller_folder_and_bind_mounted_container(tmp_path):
    mount = tmp_path / "cgroup"
    (mount / "cpu,cpuacct" / "user" / "job").mkdir(parents=True)
    (mount / "memory").mkdir()
    proc = tmp_path / "proc_cgroup"
    # The memory path does not exist under the mount (Docker bind-mounts the container's own
    # cgroup there): the mount's folder is the nearest that does. Other controllers are ignored.
    proc.write_text("5:memory:/docker/abc\n4:cpu,cpuacct:/user/job\n3:pids:/user/job\n0::/\n")
    assert cgroup_folders("cpu", proc, mount) == [
        mount / "cpu,cpuacct" / "user" / "job", mount / "cpu,cpuacct" / "user", mount / "cpu,cpuacct"]
    assert cgroup_folders("memory", proc, mount) == [mount / "memory"]


def test_without_proc_cgroup(tmp_path):
    mount = tmp_path / "cgroup"
    (mount / "cpu").mkdir(parents=True)
    assert cgroup_folders("cpu", tmp_path / "missing", mount) == [mount / "cpu"]
    assert cgroup_folders("cpu", tmp_path / "missing", tmp_path / "nothing") == []
