using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>
/// A page-aligned run of device-visible memory, in system RAM (a coherent buffer) or VRAM (a fixed offset), mapped
/// at <see cref="Va"/> in a context. The test reads and writes it directly, as the CPU (or a debugger) would.
/// </summary>
internal sealed class DeviceArray
{
    private readonly DmaCoherentBuffer? _system;
    private readonly VramPort? _vram;

    private DeviceArray(ulong va, int bytes, DmaCoherentBuffer? system, VramPort? vram, ulong vramOffset)
    {
        Va = va;
        Bytes = bytes;
        _system = system;
        _vram = vram;
        Address = system?.BusAddress ?? vramOffset;
    }

    public ulong Va { get; }

    public int Bytes { get; }

    /// <summary>Bus address (system) or VRAM offset.</summary>
    public ulong Address { get; }

    public Aperture Aperture => _system is null ? Aperture.Vram : Aperture.System;

    public Span<byte> Span
    {
        get
        {
            if (_system is not null)
                return _system.Span[..Bytes];
            _vram!.TryGetSpan(Address, Bytes, write: true, out var span);
            return span;
        }
    }

    /// <summary>
    /// Allocates <paramref name="bytes"/> (rounded up to pages) in system RAM, or in VRAM at
    /// <paramref name="vramOffset"/>, and maps it at <paramref name="va"/> of <paramref name="ctx"/>.
    /// </summary>
    public static DeviceArray Create(GpuTestMachine m, int ctx, ulong va, int bytes, bool vram, ulong vramOffset = 0,
        PtePermissions permissions = PtePermissions.ReadWriteAtomic, bool map = true)
    {
        ulong rounded = ((ulong)bytes + GpuTestMachine.Page - 1) & ~(GpuTestMachine.Page - 1);
        var a = vram
            ? new DeviceArray(va, (int)rounded, null, m.Model.Vram, vramOffset)
            : new DeviceArray(va, (int)rounded, m.Alloc(rounded), null, 0);
        a.Span.Clear();
        if (map)
            m.MapRange(ctx, va, a.Aperture, a.Address, rounded, permissions);
        return a;
    }
}
