using HmmEmu.Kernel;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The suite's view of our dmirror-equivalent driver (devices/Mirror): device reads, writes, migration and exclusive
/// access go through its ioctls, exactly as hmm-tests.c drives it, with a bounce buffer in the calling process.
/// </summary>
public sealed class MirrorTarget : IMirrorTarget
{
    /// <summary>Device pages per mirror device: enough for every tracked page of every process many times over.</summary>
    public const int DevicePages = 4096;

    /// <inheritdoc />
    public string Name => "mirror";

    /// <inheritdoc />
    public MirrorCapabilities Capabilities => MirrorCapabilities.Migrate | MirrorCapabilities.Exclusive;

    /// <inheritdoc />
    public IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit) => new Device(new MirrorDevice(kernel, unit, pages: DevicePages));

    private sealed class Device(MirrorDevice device) : IMirrorTargetDevice
    {
        public int AllocatedDevicePages => device.Capacity - device.FreeDevicePages;

        public IMirrorContext Open()
        {
            var err = device.Open(out var file);
            if (err != Errno.Ok)
                throw new InvalidOperationException($"open of {device} failed with {err}");
            var process = device.Kernel.CurrentProcess ?? throw new InvalidOperationException("Open must run on a process thread.");
            // The user buffers the ioctls copy through (hmm_buffer's mirror), outside the suite's tracked slots: one
            // per command that may use this file at once (a concurrent pair).
            ulong bounce = process.Map(BounceBytes * CommandSlots.Count, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            return new Context(file!, process, bounce);
        }
    }

    private const ulong BounceBytes = Layout.PagesPerSlot * (ulong)Layout.PageSize;

    private sealed class Context(MirrorFile file, Process process, ulong bounceBase) : IMirrorContext
    {
        private bool _closed;
        private readonly CommandSlots _slots = new("mirror file");

        // Takes a free bounce buffer (one per command that may use this file at once).
        private ulong TakeBounce(out int slot)
        {
            slot = _slots.Take();
            return bounceBase + (ulong)slot * BounceBytes;
        }

        private void ReturnBounce(int slot) => _slots.Return(slot);

        public MmuIntervalNotifier? Notifier => _closed ? null : file.Notifier;

        public Errno Read(ulong addr, Span<byte> destination)
        {
            ulong bounce = TakeBounce(out int slot);
            try
            {
                var err = Ioctl(MirrorIoctl.Read, addr, (ulong)destination.Length / Layout.PageSize, bounce);
                return err != Errno.Ok ? err : process.Mm.CopyFromUser(bounce, destination);
            }
            finally
            {
                ReturnBounce(slot);
            }
        }

        public Errno Write(ulong addr, ReadOnlySpan<byte> source)
        {
            ulong bounce = TakeBounce(out int slot);
            try
            {
                var err = process.Mm.CopyToUser(bounce, source);
                return err != Errno.Ok ? err : Ioctl(MirrorIoctl.Write, addr, (ulong)source.Length / Layout.PageSize, bounce);
            }
            finally
            {
                ReturnBounce(slot);
            }
        }

        public Errno MigrateToDevice(ulong addr, ulong npages) => WithBounce(MirrorIoctl.MigrateToDevice, addr, npages, default);

        public Errno MigrateToSystem(ulong addr, ulong npages) => WithBounce(MirrorIoctl.MigrateToSystem, addr, npages, default);

        public Errno Exclusive(ulong addr, ulong npages, Span<byte> destination) => WithBounce(MirrorIoctl.Exclusive, addr, npages, destination);

        // An ioctl that may copy pages out to the bounce buffer, then (on success) into destination.
        private Errno WithBounce(MirrorIoctl request, ulong addr, ulong npages, Span<byte> destination)
        {
            ulong bounce = TakeBounce(out int slot);
            try
            {
                var err = Ioctl(request, addr, npages, bounce);
                return err != Errno.Ok || destination.IsEmpty ? err : process.Mm.CopyFromUser(bounce, destination);
            }
            finally
            {
                ReturnBounce(slot);
            }
        }

        public Errno AtomicAdd(ulong addr, long value, out long? previous)
        {
            previous = null;
            return Errno.EOPNOTSUPP;
        }

        public void Close()
        {
            _closed = true;
            file.Close();
            if (!process.HasExited)
                process.Mm.Munmap(bounceBase, BounceBytes * CommandSlots.Count);
        }

        public IReadOnlyList<DeviceTranslation> Translations() =>
            _closed ? [] : [.. file.DumpPageTable().Select(e => new DeviceTranslation(e.Address, e.Pfn, e.Writable, e.Atomic, "pt"))];

        // hmm_dmirror_cmd: retried while interrupted.
        private Errno Ioctl(MirrorIoctl request, ulong addr, ulong npages, ulong bounce)
        {
            var cmd = new MirrorCommand { Addr = addr, Ptr = bounce, NPages = npages };
            Errno err;
            while ((err = file.Ioctl(request, ref cmd)) == Errno.EINTR)
            {
            }
            return err;
        }
    }
}
