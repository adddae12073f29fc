using System.Runtime.InteropServices;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Gpu.Tests;

/// <summary>Typed reads and writes of a process's memory for the scenarios (through the CPU's page tables).</summary>
internal static class UserMemory
{
    public static ulong MapAnonymous(this Process p, ulong bytes) =>
        p.Map((bytes + 4095) & ~4095UL, Prot.ReadWrite, MapFlags.PrivateAnonymous);

    public static void Write<T>(this Process p, ulong address, ReadOnlySpan<T> values) where T : unmanaged =>
        p.WriteBytes(address, MemoryMarshal.AsBytes(values));

    public static T[] Read<T>(this Process p, ulong address, int count) where T : unmanaged
    {
        var values = new T[count];
        p.ReadBytes(address, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    public static ulong ReadU64(this Process p, ulong address) => p.Read<ulong>(address, 1)[0];
}
