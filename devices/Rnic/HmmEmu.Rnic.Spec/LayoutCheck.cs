namespace HmmEmu.Rnic;

/// <summary>Length checks shared by the layouts' Read and Write methods.</summary>
internal static class LayoutCheck
{
    /// <summary>Throws unless <paramref name="length"/> equals <paramref name="size"/>.</summary>
    public static void Length(string what, int size, int length)
    {
        if (length != size)
            throw new ArgumentException($"{what} is {size} bytes; the span given is {length}. Pass exactly one entry.");
    }
}
