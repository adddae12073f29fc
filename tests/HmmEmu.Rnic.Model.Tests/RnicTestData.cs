namespace HmmEmu.Rnic.Model.Tests;

/// <summary>Access flags, byte patterns and WQEs the data-path tests share.</summary>
internal static class RnicTestData
{
    /// <summary>Every MR right: local write and remote write, read and atomic.</summary>
    public const RnicAccessFlags AllRemote = RnicAccessFlags.LocalWrite | RnicAccessFlags.RemoteWrite |
        RnicAccessFlags.RemoteRead | RnicAccessFlags.RemoteAtomic;

    /// <summary>Fills <paramref name="bytes"/> with a pattern that differs per <paramref name="seed"/> and per <paramref name="stride"/>.</summary>
    public static void Fill(Span<byte> bytes, int seed, int stride = 31)
    {
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)((i * stride) + seed);
    }

    /// <summary>A signaled one-SGE WRITE (or <paramref name="opcode"/>) from <paramref name="local"/> to <paramref name="remote"/>.</summary>
    public static RnicSendWqe Write(ulong wrId, RawMr local, ulong offset, uint length, RawMr remote, ulong remoteOffset,
        RnicWrOpcode opcode = RnicWrOpcode.RdmaWrite, uint imm = 0) =>
        new(opcode, RnicSendFlags.Signaled, 1, imm, wrId, remote.Iova + remoteOffset, remote.Key,
            Sge0: new RnicSge(local.Iova + offset, length, local.Key));
}
