namespace MyDevice.Driver;

/// <summary>A translation the device holds: virtual page <paramref name="Address"/> maps RAM frame <paramref name="Pfn"/>.</summary>
/// <param name="Address">Page-aligned virtual address in the mirrored process.</param>
/// <param name="Pfn">The frame, as the CPU names it.</param>
/// <param name="Writable">Whether the device may write through it.</param>
public readonly record struct MyDevMapping(ulong Address, ulong Pfn, bool Writable);
