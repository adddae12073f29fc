using HmmEmu.Kernel;

namespace HmmEmu.Rnic.Driver;

/// <summary>The entry point of the user-level verbs API (ibv_open_device).</summary>
public static class Ibv
{
    /// <summary>
    /// Opens <paramref name="device"/> for <paramref name="process"/>: a user context with its own doorbell page.
    /// Returns ENODEV for a removed device and ENOSPC when every doorbell page is taken. May sleep.
    /// </summary>
    public static Errno OpenDevice(RnicDevice device, Process process, out IbvContext? context)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(process);
        context = null;
        if (device.IsRemoved)
            return Errno.ENODEV;
        var c = new IbvContext(device, process);
        if (!device.TryAddContext(c, out uint index))
            return Errno.ENOSPC;
        c.Index = index;
        context = c;
        return Errno.Ok;
    }
}
