using HmmEmu.Kernel;

namespace HmmEmu.Mirror;

/// <summary>
/// One mirror device node (/dev/hmm_dmirrorN). Each open gives a <see cref="MirrorFile"/> that mirrors the
/// opening process's address space.
/// </summary>
public sealed class MirrorDevice
{
    /// <summary>Creates device <paramref name="minor"/> on <paramref name="kernel"/>.</summary>
    public MirrorDevice(HostKernel kernel, int minor)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        Kernel = kernel;
        Minor = minor;
    }

    /// <summary>The kernel the device is attached to.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The device number.</summary>
    public int Minor { get; }

    /// <summary>
    /// open(2) on the device node by the calling process: registers an interval notifier over the whole address
    /// space. Returns the errno of the notifier registration on failure. Must run on a process thread. May sleep.
    /// </summary>
    public Errno Open(out MirrorFile? file)
    {
        var process = Kernel.CurrentProcess ?? throw new InvalidOperationException(
            "MirrorDevice.Open must be called from a thread of a simulated process (Process.StartThread): the mirror binds to the caller's address space.");
        file = new MirrorFile(this, process.Mm);
        var err = file.Notifier.Insert(process.Mm, 0, ulong.MaxValue & ~0xFFFUL);
        if (err != Errno.Ok)
            file = null;
        return err;
    }

    /// <inheritdoc />
    public override string ToString() => $"hmm_dmirror{Minor}";
}
