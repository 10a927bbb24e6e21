// Hardhat 2 config for `npx hardhat node`: everything left at its defaults
// (chainId 31337, automine on, 20 funded accounts, logging on). The empty
// `hardhat` network entry only avoids Hardhat's "empty config" warning.
export default {
  networks: {
    hardhat: {},
  },
};
