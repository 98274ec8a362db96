// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ChannelEscrow — local stand-in for the TIP-1034 TIP-20 channel escrow precompile
/// @notice Installed with `anvil_setCode` at the precompile address 0x4d50500000000000000000000000000000000000
///         on a local anvil chain, where no precompile exists. Same ABI, events, channel id formula,
///         EIP-712 voucher domain and packed per-channel state as the precompile, so unmodified mppx
///         clients and servers (and our own) cannot tell the difference.
/// @dev Two things a contract cannot do like the precompile, and how they are bridged (dev only):
///      1. It cannot see the opening transaction's `expiringNonceHash` (the node seeds the precompile with
///         keccak256(encodeForSigning(tx) || sender)). Dev tooling computes it from the signed open tx and
///         writes it with `anvil_setStorageAt` before broadcasting, at
///           slot = keccak256(abi.encode(openKey, PRIMED_NONCE_HASH_SLOT))
///           openKey = keccak256(abi.encode(payer, payee, operator, token, salt, authorizedSigner))
///         i.e. the Solidity layout of `mapping(bytes32 => bytes32)` declared second (slot 1).
///         The slot is read, never cleared, so an open costs the same gas during estimation (before the tx
///         is signed and primed) as when it executes; mppx draws a random salt per open, so keys never repeat.
///         An unprimed open uses a zero hash: estimation then succeeds, and a client that derived its
///         channel id from the signed tx will not find its channel — the symptom of a missing prime.
///      2. It cannot move TIP-20 natively, so it pulls deposits with `transferFrom`: payers approve it once.
///      Voucher signatures: 65-byte secp256k1 only (the precompile also accepts P256/WebAuthn envelopes).
contract ChannelEscrow {
    struct ChannelDescriptor {
        address payer;
        address payee;
        address operator;
        address token;
        bytes32 salt;
        address authorizedSigner;
        bytes32 expiringNonceHash;
    }

    /// @dev 96 + 96 + 32 bits: one storage slot per channel, like the precompile (and one 250k-gas new slot per open).
    struct ChannelState {
        uint96 settled;
        uint96 deposit;
        uint32 closeRequestedAt;
    }

    struct Channel {
        ChannelDescriptor descriptor;
        ChannelState state;
    }

    uint64 public constant CLOSE_GRACE_PERIOD = 900;
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint96 cumulativeAmount)");

    bytes32 private constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    // The name mppx 0.11 (via ox) signs vouchers under; mppx is the reference for this stand-in.
    bytes32 private constant NAME_HASH = keccak256("TIP20 Channel Reserve");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private constant SECP256K1_HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    bytes12 private constant TIP20_PREFIX = 0x20c000000000000000000000;

    mapping(bytes32 channelId => ChannelState) private _channelStates; // slot 0
    mapping(bytes32 openKey => bytes32 expiringNonceHash) private _primedExpiringNonceHashes; // slot 1, written by dev tooling

    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed payee,
        address operator,
        address token,
        address authorizedSigner,
        bytes32 salt,
        bytes32 expiringNonceHash,
        uint96 deposit
    );
    event Settled(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed payee,
        uint96 cumulativeAmount,
        uint96 deltaPaid,
        uint96 newSettled
    );
    event TopUp(
        bytes32 indexed channelId, address indexed payer, address indexed payee, uint96 additionalDeposit, uint96 newDeposit
    );
    event CloseRequested(bytes32 indexed channelId, address indexed payer, address indexed payee, uint256 closeGraceEnd);
    event ChannelClosed(
        bytes32 indexed channelId, address indexed payer, address indexed payee, uint96 settledToPayee, uint96 refundedToPayer
    );
    event CloseRequestCancelled(bytes32 indexed channelId, address indexed payer, address indexed payee);

    error ChannelAlreadyExists();
    error ChannelNotFound();
    error NotPayer();
    error NotPayeeOrOperator();
    error InvalidPayee();
    error InvalidToken();
    error ZeroDeposit();
    error InvalidSignature();
    error AmountExceedsDeposit();
    error AmountNotIncreasing();
    error CaptureAmountInvalid();
    error CloseNotReady();
    error DepositOverflow();
    error TokenTransferFailed();

    function open(
        address payee,
        address operator,
        address token,
        uint96 deposit,
        bytes32 salt,
        address authorizedSigner
    ) external returns (bytes32 channelId) {
        if (payee == address(0) || bytes12(bytes20(payee)) == TIP20_PREFIX) revert InvalidPayee();
        if (bytes12(bytes20(token)) != TIP20_PREFIX) revert InvalidToken();
        if (deposit == 0) revert ZeroDeposit();

        bytes32 openKey = keccak256(abi.encode(msg.sender, payee, operator, token, salt, authorizedSigner));
        bytes32 expiringNonceHash = _primedExpiringNonceHashes[openKey];
        channelId = _computeChannelId(msg.sender, payee, operator, token, salt, authorizedSigner, expiringNonceHash);
        if (_channelStates[channelId].deposit != 0) revert ChannelAlreadyExists();

        _channelStates[channelId] = ChannelState({settled: 0, deposit: deposit, closeRequestedAt: 0});
        _pullFromPayer(token, msg.sender, deposit);
        emit ChannelOpened(channelId, msg.sender, payee, operator, token, authorizedSigner, salt, expiringNonceHash, deposit);
    }

    function settle(ChannelDescriptor calldata descriptor, uint96 cumulativeAmount, bytes calldata signature) external {
        bytes32 channelId = _channelIdOf(descriptor);
        ChannelState memory state = _loadExistingState(channelId);
        _requirePayeeOrOperator(descriptor);
        if (cumulativeAmount > state.deposit) revert AmountExceedsDeposit();
        if (cumulativeAmount <= state.settled) revert AmountNotIncreasing();
        _requireValidVoucher(descriptor, channelId, cumulativeAmount, signature);

        uint96 delta = cumulativeAmount - state.settled;
        _channelStates[channelId].settled = cumulativeAmount;
        _pay(descriptor.token, descriptor.payee, delta);
        emit Settled(channelId, descriptor.payer, descriptor.payee, cumulativeAmount, delta, cumulativeAmount);
    }

    /// @dev A zero top-up is allowed: it only cancels a pending close request, like the precompile.
    function topUp(ChannelDescriptor calldata descriptor, uint96 additionalDeposit) external {
        bytes32 channelId = _channelIdOf(descriptor);
        ChannelState memory state = _loadExistingState(channelId);
        if (msg.sender != descriptor.payer) revert NotPayer();
        if (uint256(state.deposit) + additionalDeposit > type(uint96).max) revert DepositOverflow();

        bool hadCloseRequest = state.closeRequestedAt != 0;
        state.deposit += additionalDeposit;
        state.closeRequestedAt = 0;
        _channelStates[channelId] = state;
        if (additionalDeposit != 0) _pullFromPayer(descriptor.token, msg.sender, additionalDeposit);
        if (hadCloseRequest) emit CloseRequestCancelled(channelId, descriptor.payer, descriptor.payee);
        emit TopUp(channelId, descriptor.payer, descriptor.payee, additionalDeposit, state.deposit);
    }

    /// @dev Idempotent: a second request keeps the first timestamp, so it cannot extend the grace period.
    function requestClose(ChannelDescriptor calldata descriptor) external {
        bytes32 channelId = _channelIdOf(descriptor);
        ChannelState memory state = _loadExistingState(channelId);
        if (msg.sender != descriptor.payer) revert NotPayer();
        if (state.closeRequestedAt != 0) return;

        _channelStates[channelId].closeRequestedAt = uint32(block.timestamp);
        emit CloseRequested(channelId, descriptor.payer, descriptor.payee, block.timestamp + CLOSE_GRACE_PERIOD);
    }

    /// @dev `captureAmount` is what the payee actually takes (at most what the voucher allows); the signature is
    ///      only checked when it captures more than is already settled.
    function close(
        ChannelDescriptor calldata descriptor,
        uint96 cumulativeAmount,
        uint96 captureAmount,
        bytes calldata signature
    ) external {
        bytes32 channelId = _channelIdOf(descriptor);
        ChannelState memory state = _loadExistingState(channelId);
        _requirePayeeOrOperator(descriptor);
        if (captureAmount < state.settled || captureAmount > cumulativeAmount) revert CaptureAmountInvalid();
        if (captureAmount > state.deposit) revert AmountExceedsDeposit();
        if (captureAmount > state.settled) _requireValidVoucher(descriptor, channelId, cumulativeAmount, signature);

        uint96 delta = captureAmount - state.settled;
        uint96 refund = state.deposit - captureAmount;
        delete _channelStates[channelId];
        if (delta != 0) _pay(descriptor.token, descriptor.payee, delta);
        if (refund != 0) _pay(descriptor.token, descriptor.payer, refund);
        emit ChannelClosed(channelId, descriptor.payer, descriptor.payee, captureAmount, refund);
    }

    function withdraw(ChannelDescriptor calldata descriptor) external {
        bytes32 channelId = _channelIdOf(descriptor);
        ChannelState memory state = _loadExistingState(channelId);
        if (msg.sender != descriptor.payer) revert NotPayer();
        if (state.closeRequestedAt == 0 || block.timestamp < uint256(state.closeRequestedAt) + CLOSE_GRACE_PERIOD) {
            revert CloseNotReady();
        }

        uint96 refund = state.deposit - state.settled;
        delete _channelStates[channelId];
        if (refund != 0) _pay(descriptor.token, descriptor.payer, refund);
        emit ChannelClosed(channelId, descriptor.payer, descriptor.payee, state.settled, refund);
    }

    function getChannel(ChannelDescriptor calldata descriptor) external view returns (Channel memory) {
        return Channel({descriptor: descriptor, state: _channelStates[_channelIdOf(descriptor)]});
    }

    function getChannelState(bytes32 channelId) external view returns (ChannelState memory) {
        return _channelStates[channelId];
    }

    function getChannelStatesBatch(bytes32[] calldata channelIds) external view returns (ChannelState[] memory states) {
        states = new ChannelState[](channelIds.length);
        for (uint256 i = 0; i < channelIds.length; i++) {
            states[i] = _channelStates[channelIds[i]];
        }
    }

    function computeChannelId(
        address payer,
        address payee,
        address operator,
        address token,
        bytes32 salt,
        address authorizedSigner,
        bytes32 expiringNonceHash
    ) external view returns (bytes32) {
        return _computeChannelId(payer, payee, operator, token, salt, authorizedSigner, expiringNonceHash);
    }

    function getVoucherDigest(bytes32 channelId, uint96 cumulativeAmount) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _computeChannelId(
        address payer,
        address payee,
        address operator,
        address token,
        bytes32 salt,
        address authorizedSigner,
        bytes32 expiringNonceHash
    ) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                payer, payee, operator, token, salt, authorizedSigner, expiringNonceHash, address(this), block.chainid
            )
        );
    }

    function _channelIdOf(ChannelDescriptor calldata d) private view returns (bytes32) {
        return _computeChannelId(d.payer, d.payee, d.operator, d.token, d.salt, d.authorizedSigner, d.expiringNonceHash);
    }

    function _loadExistingState(bytes32 channelId) private view returns (ChannelState memory state) {
        state = _channelStates[channelId];
        if (state.deposit == 0) revert ChannelNotFound();
    }

    function _requirePayeeOrOperator(ChannelDescriptor calldata d) private view {
        if (msg.sender != d.payee && (d.operator == address(0) || msg.sender != d.operator)) revert NotPayeeOrOperator();
    }

    function _requireValidVoucher(
        ChannelDescriptor calldata d,
        bytes32 channelId,
        uint96 cumulativeAmount,
        bytes calldata signature
    ) private view {
        address expectedSigner = d.authorizedSigner == address(0) ? d.payer : d.authorizedSigner;
        address signer = _recoverSecp256k1(getVoucherDigest(channelId, cumulativeAmount), signature);
        if (signer == address(0) || signer != expectedSigner) revert InvalidSignature();
    }

    /// @dev Rejects high-s signatures: otherwise (r, n - s) would be a second valid encoding of the same voucher.
    function _recoverSecp256k1(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > SECP256K1_HALF_ORDER) return address(0);
        return ecrecover(digest, v, r, s);
    }

    function _pullFromPayer(address token, address payer, uint96 amount) private {
        _callToken(token, abi.encodeWithSignature("transferFrom(address,address,uint256)", payer, address(this), amount));
    }

    function _pay(address token, address to, uint96 amount) private {
        _callToken(token, abi.encodeWithSignature("transfer(address,uint256)", to, amount));
    }

    function _callToken(address token, bytes memory data) private {
        (bool ok, bytes memory returned) = token.call(data);
        // Bubble up the token's own error (insufficient balance or allowance) instead of masking it.
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 32), mload(returned))
            }
        }
        if (returned.length != 0 && !abi.decode(returned, (bool))) revert TokenTransferFailed();
    }
}
